// The storage tier in an S3-compatible object store (STORAGE_BACKEND=s3|r2):
// AWS S3, Cloudflare R2 (S3 with the endpoint
// https://<account>.r2.cloudflarestorage.com and region "auto"), MinIO, ...
// libcurl signs every request with SigV4 (CURLOPT_AWS_SIGV4) and addresses the
// bucket path-style: {S3_ENDPOINT}/{S3_BUCKET}/{object}.
//
// Layout of the bucket:
//   {h[0:2]}/{h[2:4]}/{h}   the entry's bytes; its EntryMeta in x-amz-meta-nic-*
//                           headers, plus x-amz-meta-nic-sha256 of the bytes
//   index/{g}/{h}           an empty marker per entry, g = SHA-256 of the
//                           entry's source group "v1/*/{id}/" (nic::source_group_of:
//                           a source and all its variants under every
//                           workspace), so a purge lists index/{g}/ and
//                           deletes what it names. Markers are separate
//                           objects, so concurrent writes never race on a
//                           shared index document.
// The marker is written before the bytes: an entry is never unreachable by a
// purge; a marker whose bytes never arrived is harmless (the purge deletes a
// missing object).
//
// A read is a hit only when the body is complete (the transfer's length,
// x-amz-meta-nic-size) and its SHA-256 equals x-amz-meta-nic-sha256, and the
// stored key hashes to the requested name; anything else is a miss. Writes
// carry x-amz-content-sha256 (the payload's hash, part of the signature), so
// the store rejects a body damaged on the way. Object PUTs are conditional
// (If-None-Match: *): of two instances writing the same entry, one writes and
// the other gets 412, then checks by HEAD that the stored bytes are its own
// (else it replaces them).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "store.h"

namespace nic::origin {

struct S3Settings {
  std::string endpoint;  // scheme://host[:port], no trailing slash
  std::string bucket;
  std::string region;
  std::string access_key;
  std::string secret_key;
  std::int64_t timeout_ms = 15000;
  std::int64_t probe_interval_ms = 5000;  // health re-check while unhealthy
};

// One S3 call's outcome (exposed for tests).
struct S3Reply {
  long status = 0;  // 0: no HTTP answer (connection refused, timeout, ...)
  std::string transport_error;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::shared_ptr<Bytes> body = std::make_shared<Bytes>();
  std::string header(std::string_view name) const;
  std::string error_code() const;  // <Code> of an S3 XML error, if any
  std::string describe() const;    // "403 InvalidAccessKeyId: ..." or the transport error
};

// Object names, relative to the bucket.
std::string s3_object_name(const std::string& hash);
std::string s3_index_name(const std::string& group, const std::string& hash);
// AWS URI encoding of one query value or path segment (RFC 3986 unreserved kept).
std::string s3_uri_encode(std::string_view text);

class S3Store final : public Store {
 public:
  // Checks the settings and that the bucket answers to these credentials
  // (a signed ListObjectsV2). Refused credentials or a missing bucket are an
  // error; an unreachable store is not (the origin starts degraded and serves
  // from upstream until the store answers).
  static Result<std::unique_ptr<S3Store>> open(S3Settings settings);
  ~S3Store() override;

  std::optional<Hit> read(const std::string& hash) override;
  std::optional<EntryMeta> meta(const std::string& hash) override;
  Status write(const std::string& hash, EntryMeta meta, std::span<const std::uint8_t> bytes) override;
  Status update_meta(const std::string& hash, const EntryMeta& meta) override;
  bool erase(const std::string& hash) override;
  std::size_t erase_group(std::string_view group) override;
  StoreStats stats() const override;
  bool writable() const override { return healthy_.load(); }
  std::string describe() const override;

  // One signed request (tests; the store itself). `query` must already be
  // canonical: names sorted, names and values s3_uri_encode()d.
  S3Reply call(const std::string& method, const std::string& object, const std::string& query,
               const std::vector<std::string>& headers, std::span<const std::uint8_t> body) const;

 private:
  explicit S3Store(S3Settings settings);
  // Lists object names under `prefix` (all pages).
  Result<std::vector<std::string>> list(const std::string& prefix) const;
  Status check_bucket() const;
  void note(const S3Reply& reply) const;  // health from a call's outcome
  void remember(const std::string& hash, const EntryMeta& meta);
  void forget(const std::string& hash);
  void probe_loop();

  S3Settings settings_;
  std::string base_;  // endpoint + "/" + bucket
  mutable std::atomic<bool> healthy_{true};
  mutable std::mutex mu_;
  std::unordered_map<std::string, EntryMeta> known_;  // metadata seen by this process
  mutable StoreStats stats_;
  std::mutex probe_mu_;
  std::condition_variable probe_cv_;
  bool stopping_ = false;
  std::thread prober_;
};

}  // namespace nic::origin
