// JPEG through libjpeg-turbo's libjpeg API (markers, Adobe transform, DCT
// scaling and progressive encoding are all reachable there).
//
// libjpeg reports fatal errors by longjmp. Every C++ object that outlives a
// libjpeg call is constructed before setjmp and not modified after it; row
// buffers come from libjpeg's own pools, freed by jpeg_destroy_*.
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <vector>

// jpeglib.h needs FILE and size_t first.
#include <jpeglib.h>
#include <jerror.h>

#include "big_buffer.h"
#include "image.h"

namespace nic::detail {
namespace {

// A progressive JPEG can hold thousands of tiny scans, each a full pass over
// the coefficients: a CPU bomb. Real encoders write fewer than 20.
constexpr int kMaxScans = 256;

struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void on_message(j_common_ptr cinfo, int level) {
  // Truncation is only a warning to libjpeg (it pads with grey); to us the
  // image is corrupt. Other warnings (stray bytes between markers) are common
  // in real files and harmless.
  if (level == -1) {
    const int code = cinfo->err->msg_code;
    if (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER) on_error(cinfo);
    ++cinfo->err->num_warnings;
  }
}

void on_progress(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor) return;
  const auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->input_scan_number > kMaxScans) {
    auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
    std::snprintf(err->message, sizeof err->message, "too many progressive scans (over %d)",
                  kMaxScans);
    std::longjmp(err->jump, 1);
  }
}

// A progressive (or multi-scan) JPEG is decoded through whole-image
// coefficient arrays (2 bytes per sample: 3.9 MB for a 1280x1024 4:2:0
// photo) that libjpeg allocates with malloc and zeroes. glibc hands such
// blocks back to the kernel on free, so every transform faulted them in anew
// in 4 KB pages: a third of the CPU time of `GreenMeadow` (progressive
// 1280x1024, 800 wide out). The decoder's memory manager methods for these
// arrays are replaced (libjpeg's methods are public for this) by ones that
// put all of them in one BigBuffer (2 MB pages). Only the decoder asks for
// block arrays here; sample arrays stay libjpeg's.
struct CoefArray {
  JDIMENSION blocks_per_row = 0;
  JDIMENSION rows = 0;
  bool pre_zero = false;
  JBLOCKARRAY row_ptrs = nullptr;  // set when realized
};

struct Decompressor {
  jpeg_decompress_struct cinfo{};
  ErrorManager err{};
  jpeg_progress_mgr progress{};
  bool created = false;
  // Here, not on the stack: a longjmp out of libjpeg must not skip its destructor.
  std::shared_ptr<const ColourConversion> cmyk_conversion;
  // One per component at most: a fixed array, so the callbacks never allocate.
  CoefArray coef_arrays[MAX_COMPONENTS];
  int coef_array_count = 0;
  BigBuffer coef_memory;
  void (*libjpeg_realize)(j_common_ptr) = nullptr;
};
struct DecompressorDeleter {
  void operator()(Decompressor* d) const {
    if (d->created) jpeg_destroy_decompress(&d->cinfo);
    delete d;
  }
};
using DecompressorPtr = std::unique_ptr<Decompressor, DecompressorDeleter>;

struct Compressor {
  jpeg_compress_struct cinfo{};
  ErrorManager err{};
  unsigned char* out = nullptr;  // malloc'd by jpeg_mem_dest
  unsigned long out_size = 0;
  bool created = false;
  std::vector<JSAMPLE> grey_row;  // a grey image's row, one byte a pixel
};
struct CompressorDeleter {
  void operator()(Compressor* c) const {
    if (c->created) jpeg_destroy_compress(&c->cinfo);
    std::free(c->out);
    delete c;
  }
};
using CompressorPtr = std::unique_ptr<Compressor, CompressorDeleter>;

// Sets up error handling and the source; call right after setjmp.
void open(Decompressor& d, Bytes data) {
  jpeg_create_decompress(&d.cinfo);
  d.created = true;
  d.progress.progress_monitor = on_progress;
  d.cinfo.progress = &d.progress;
  jpeg_mem_src(&d.cinfo, data.data(), static_cast<unsigned long>(data.size()));
  jpeg_save_markers(&d.cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_save_markers(&d.cinfo, JPEG_APP0 + 2, 0xFFFF);  // ICC_PROFILE, possibly in parts
}

Decompressor& owner(j_common_ptr cinfo) { return *static_cast<Decompressor*>(cinfo->client_data); }

jvirt_barray_ptr request_coef_array(j_common_ptr cinfo, int pool_id, boolean pre_zero, JDIMENSION blocks_per_row,
                                    JDIMENSION rows, JDIMENSION /*max_access: all rows are in memory*/) {
  Decompressor& d = owner(cinfo);
  if (pool_id != JPOOL_IMAGE) ERREXIT1(cinfo, JERR_BAD_POOL_ID, pool_id);
  if (d.coef_array_count == MAX_COMPONENTS) ERREXIT(cinfo, JERR_BAD_VIRTUAL_ACCESS);
  CoefArray& a = d.coef_arrays[d.coef_array_count++];
  a.blocks_per_row = blocks_per_row;
  a.rows = rows;
  a.pre_zero = pre_zero != 0;
  return reinterpret_cast<jvirt_barray_ptr>(&a);
}

void realize_coef_arrays(j_common_ptr cinfo) {
  Decompressor& d = owner(cinfo);
  d.libjpeg_realize(cinfo);  // libjpeg's own virtual arrays (sample arrays), if any
  if (d.coef_array_count == 0 || d.coef_memory) return;
  // Blocks first (128 bytes each), then the row pointers. At most 4 components
  // of 2^16 x 2^16 samples: no overflow in 64 bits.
  std::size_t blocks = 0, rows = 0;
  for (int i = 0; i < d.coef_array_count; ++i) {
    blocks += static_cast<std::size_t>(d.coef_arrays[i].blocks_per_row) * d.coef_arrays[i].rows;
    rows += d.coef_arrays[i].rows;
  }
  if (!d.coef_memory.allocate(blocks * sizeof(JBLOCK) + rows * sizeof(JBLOCKROW))) {
    ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 10);
  }
  auto* block = reinterpret_cast<JBLOCKROW>(d.coef_memory.get());
  auto* row_ptr = reinterpret_cast<JBLOCKARRAY>(d.coef_memory.get() + blocks * sizeof(JBLOCK));
  for (int i = 0; i < d.coef_array_count; ++i) {
    CoefArray& a = d.coef_arrays[i];
    a.row_ptrs = row_ptr;
    const std::size_t count = static_cast<std::size_t>(a.blocks_per_row) * a.rows;
    if (a.pre_zero) std::memset(block, 0, count * sizeof(JBLOCK));
    for (JDIMENSION r = 0; r < a.rows; ++r) *row_ptr++ = block + static_cast<std::size_t>(r) * a.blocks_per_row;
    block += count;
  }
}

JBLOCKARRAY access_coef_array(j_common_ptr cinfo, jvirt_barray_ptr ptr, JDIMENSION start_row, JDIMENSION num_rows,
                              boolean /*writable*/) {
  const auto* a = reinterpret_cast<const CoefArray*>(ptr);
  if (a->row_ptrs == nullptr || start_row > a->rows || num_rows > a->rows - start_row) {
    ERREXIT(cinfo, JERR_BAD_VIRTUAL_ACCESS);
  }
  return a->row_ptrs + start_row;
}

void use_own_coef_arrays(Decompressor& d) {
  d.cinfo.client_data = &d;
  jpeg_memory_mgr& mem = *d.cinfo.mem;
  d.libjpeg_realize = mem.realize_virt_arrays;
  mem.request_virt_barray = request_coef_array;
  mem.realize_virt_arrays = realize_coef_arrays;
  mem.access_virt_barray = access_coef_array;
}

DecompressorPtr make_decompressor() {
  DecompressorPtr d(new Decompressor);
  d->cinfo.err = jpeg_std_error(&d->err.pub);
  d->err.pub.error_exit = on_error;
  d->err.pub.emit_message = on_message;
  return d;
}

int orientation_of(const jpeg_decompress_struct& cinfo) {
  for (jpeg_saved_marker_ptr m = cinfo.marker_list; m != nullptr; m = m->next) {
    if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && std::memcmp(m->data, "Exif\0\0", 6) == 0) {
      return exif_orientation(Bytes(m->data, m->data_length));
    }
  }
  return 1;
}

// The ICC profile, reassembled from its APP2 parts by libjpeg-turbo (which
// checks their numbering); a missing, inconsistent or oversized one is left
// out (the pixels are then taken as sRGB).
ColourTag colour_of(jpeg_decompress_struct& cinfo) {
  ColourTag tag;
  JOCTET* icc = nullptr;
  unsigned int size = 0;
  if (jpeg_read_icc_profile(&cinfo, &icc, &size) && icc != nullptr) {
    if (size <= kMaxIccBytes) {
      tag.kind = ColourTag::Kind::Icc;
      tag.icc.assign(icc, icc + size);
    }
  }
  std::free(icc);
  return tag;
}

bool supported_colour(const jpeg_decompress_struct& cinfo) {
  switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE: return cinfo.num_components == 1;
    case JCS_YCbCr:
    case JCS_RGB: return cinfo.num_components == 3;
    case JCS_CMYK:
    case JCS_YCCK: return cinfo.num_components == 4;
    default: return false;
  }
}

// CMYK (as libjpeg delivers it, YCCK already converted) to RGBX. Photoshop
// writes inverted CMYK and marks it with an Adobe APP14 segment. Used when
// the file has no (usable) CMYK profile: the usual naive conversion.
void cmyk_to_rgbx(const JSAMPLE* in, std::uint8_t* out, JDIMENSION width, bool inverted) {
  for (JDIMENSION x = 0; x < width; ++x, in += 4, out += 4) {
    unsigned c = in[0], m = in[1], y = in[2], k = in[3];
    if (!inverted) {
      c = 255 - c;
      m = 255 - m;
      y = 255 - y;
      k = 255 - k;
    }
    // Now each is (255 - ink): R = (1 - C)(1 - K).
    out[0] = static_cast<std::uint8_t>((c * k + 127) / 255);
    out[1] = static_cast<std::uint8_t>((m * k + 127) / 255);
    out[2] = static_cast<std::uint8_t>((y * k + 127) / 255);
    out[3] = 255;
  }
}

}  // namespace

Result<Header> probe_jpeg(Bytes data) {
  DecompressorPtr d = make_decompressor();
  if (setjmp(d->err.jump)) return corrupt(std::string("JPEG: ") + d->err.message);
  open(*d, data);
  jpeg_read_header(&d->cinfo, TRUE);
  if (!supported_colour(d->cinfo)) {
    return make_error(ErrorCode::UnsupportedFormat, "JPEG colour space not supported");
  }
  Header h;
  h.format = ImageFormat::Jpeg;
  h.width = static_cast<int>(d->cinfo.image_width);
  h.height = static_cast<int>(d->cinfo.image_height);
  h.orientation = orientation_of(d->cinfo);
  h.gray = d->cinfo.jpeg_color_space == JCS_GRAYSCALE;
  // CMYK is converted to RGB by decode_jpeg itself.
  if (d->cinfo.jpeg_color_space != JCS_CMYK && d->cinfo.jpeg_color_space != JCS_YCCK) h.colour = colour_of(d->cinfo);
  return h;
}

Status decode_jpeg(Bytes data, const DecodeHints& hints, RowSink& sink) {
  DecompressorPtr d = make_decompressor();
  if (setjmp(d->err.jump)) return corrupt(std::string("JPEG: ") + d->err.message);
  jpeg_decompress_struct& cinfo = d->cinfo;
  open(*d, data);
  jpeg_read_header(&cinfo, TRUE);
  if (!supported_colour(cinfo)) {
    return make_error(ErrorCode::UnsupportedFormat, "JPEG colour space not supported");
  }
  const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_EXT_RGBX;
  if (cmyk) {
    d->cmyk_conversion = conversion_to_srgb(
        colour_of(cinfo), cinfo.saw_Adobe_marker ? PixelLayout::CmykInverted : PixelLayout::Cmyk);
  }
  cinfo.scale_num = static_cast<unsigned>(hints.scale_num < 1 || hints.scale_num > 8 ? 8 : hints.scale_num);
  cinfo.scale_denom = 8;
  use_own_coef_arrays(*d);
  jpeg_start_decompress(&cinfo);

  const JDIMENSION width = cinfo.output_width;
  const int rows_per_read = cinfo.rec_outbuf_height < 1 ? 1 : cinfo.rec_outbuf_height;
  JSAMPARRAY buffer = (*cinfo.mem->alloc_sarray)(reinterpret_cast<j_common_ptr>(&cinfo), JPOOL_IMAGE,
                                                 width * 4, static_cast<JDIMENSION>(rows_per_read));
  JSAMPARRAY converted = cmyk ? (*cinfo.mem->alloc_sarray)(reinterpret_cast<j_common_ptr>(&cinfo),
                                                           JPOOL_IMAGE, width * 4, 1)
                              : nullptr;
  {
    const Status began =
        sink.begin(static_cast<int>(width), static_cast<int>(cinfo.output_height), false);
    if (!began) return began;
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    const JDIMENSION got = jpeg_read_scanlines(&cinfo, buffer, static_cast<JDIMENSION>(rows_per_read));
    if (got == 0) return corrupt("JPEG: no scanlines");  // suspension cannot happen with a memory source
    for (JDIMENSION r = 0; r < got; ++r) {
      const std::uint8_t* row = buffer[r];
      if (d->cmyk_conversion) {
        convert_to_srgb(*d->cmyk_conversion, buffer[r], converted[0], width);
        row = converted[0];
      } else if (cmyk) {
        cmyk_to_rgbx(buffer[r], converted[0], width, cinfo.saw_Adobe_marker != 0);
        row = converted[0];
      }
      if (!sink.row(row)) return Ok{};  // the rest is not needed
    }
  }
  return Ok{};
}

// Progressive scan scripts. The decoded pixels do not depend on the script
// (every coefficient bit is sent in the end), only the bytes do; measured on
// bench/transform's photo and screenshot at q80, 800 wide, against
// jpeg_simple_progression (what Sharp writes: 16707 B and 128006 B):
// - photos: spectral selection only, no successive approximation (the low
//   bits of noisy coefficients cost more sent apart): 16739 -> 15913 B.
// - flat content: libjpeg's simple script with the DC in one scan:
//   128063 -> 127549 B (the photo script gave 131203 B).
// Components: 0 = Y, 1 = Cb, 2 = Cr. {comps, {index...}, Ss, Se, Ah, Al}.
constexpr jpeg_scan_info kPhotoScans[] = {
    {3, {0, 1, 2, 0}, 0, 0, 0, 0},  {1, {0, 0, 0, 0}, 1, 2, 0, 0}, {1, {0, 0, 0, 0}, 3, 9, 0, 0},
    {1, {1, 0, 0, 0}, 1, 63, 0, 0}, {1, {2, 0, 0, 0}, 1, 63, 0, 0}, {1, {0, 0, 0, 0}, 10, 63, 0, 0},
};
constexpr jpeg_scan_info kFlatScans[] = {
    {3, {0, 1, 2, 0}, 0, 0, 0, 0},  {1, {0, 0, 0, 0}, 1, 5, 0, 2},  {1, {2, 0, 0, 0}, 1, 63, 0, 1},
    {1, {1, 0, 0, 0}, 1, 63, 0, 1}, {1, {0, 0, 0, 0}, 6, 63, 0, 2}, {1, {0, 0, 0, 0}, 1, 63, 2, 1},
    {1, {2, 0, 0, 0}, 1, 63, 1, 0}, {1, {1, 0, 0, 0}, 1, 63, 1, 0}, {1, {0, 0, 0, 0}, 1, 63, 1, 0},
};

// The luma parts of the two scripts, for grey images (one component).
constexpr jpeg_scan_info kGreyPhotoScans[] = {
    {1, {0, 0, 0, 0}, 0, 0, 0, 0}, {1, {0, 0, 0, 0}, 1, 2, 0, 0},
    {1, {0, 0, 0, 0}, 3, 9, 0, 0}, {1, {0, 0, 0, 0}, 10, 63, 0, 0},
};
constexpr jpeg_scan_info kGreyFlatScans[] = {
    {1, {0, 0, 0, 0}, 0, 0, 0, 0},  {1, {0, 0, 0, 0}, 1, 5, 0, 2}, {1, {0, 0, 0, 0}, 6, 63, 0, 2},
    {1, {0, 0, 0, 0}, 1, 63, 2, 1}, {1, {0, 0, 0, 0}, 1, 63, 1, 0},
};

// The luma quantisation table: N. Robidoux's (ImageMagick's
// forum; one of mozjpeg's predefined tables, its default with trellis),
// natural order, scaled by quality like libjpeg's own. Flatter than Annex K's
// at high frequencies. Chosen on the corpus (issue 13, 9 inputs, BD-rate over
// q 60/75/85/95): against Annex K luma it needs 7-10% fewer bytes at equal
// RGB PSNR on photos (Aqua 0.994 -> 0.917 of Sharp's bytes, Garden 0.990 ->
// 0.896) at about the same bytes at equal luma SSIM (median 0.99 -> 1.00).
// Used for flat content too: the generated screenshot and diagram lost a
// little at equal SSIM (0.992 -> 1.013, 0.835 -> 0.845 of Sharp's bytes) but
// photos that look flat (Aqua) gained like the others. Chroma keeps Annex K's
// table: Robidoux's there too cost 5-10% at equal SSIM.
constexpr unsigned int kRobidouxLuma[64] = {
    16, 16, 16, 18, 25, 37, 56, 85,   16, 17, 20, 27, 34, 40, 53, 75,   16, 20, 24, 31, 43, 62, 91, 135,
    18, 27, 31, 40, 53, 74, 106, 156, 25, 34, 43, 53, 69, 94, 131, 189, 37, 40, 62, 74, 94, 124, 169, 238,
    56, 53, 91, 106, 131, 169, 226, 311, 85, 75, 135, 156, 189, 238, 311, 418,
};

Result<std::vector<std::uint8_t>> encode_jpeg(const Image& image, int quality, bool flat) {
  CompressorPtr c(new Compressor);
  // Grey stays grey: one component instead of three with flat chroma
  // (smaller, and no chroma rounding can tint it).
  const bool grey = is_grey(image);
  if (grey) c->grey_row.resize(static_cast<std::size_t>(image.width));
  c->cinfo.err = jpeg_std_error(&c->err.pub);
  c->err.pub.error_exit = on_error;
  if (setjmp(c->err.jump)) {
    return make_error(ErrorCode::Internal, std::string("JPEG encoder: ") + c->err.message);
  }
  jpeg_compress_struct& cinfo = c->cinfo;
  jpeg_create_compress(&cinfo);
  c->created = true;
  jpeg_mem_dest(&cinfo, &c->out, &c->out_size);
  cinfo.image_width = static_cast<JDIMENSION>(image.width);
  cinfo.image_height = static_cast<JDIMENSION>(image.height);
  cinfo.input_components = grey ? 1 : 4;
  cinfo.in_color_space = grey ? JCS_GRAYSCALE : JCS_EXT_RGBX;  // alpha, if any, was flattened by the caller
  jpeg_set_defaults(&cinfo);  // YCbCr with 2x2 chroma: 4:2:0 (or grey)
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_add_quant_table(&cinfo, 0, kRobidouxLuma, jpeg_quality_scaling(quality), TRUE);
  cinfo.optimize_coding = TRUE;
  // libjpeg reads the script during compression and never writes to it.
  if (grey) {
    cinfo.scan_info = flat ? kGreyFlatScans : kGreyPhotoScans;
    cinfo.num_scans = flat ? static_cast<int>(std::size(kGreyFlatScans)) : static_cast<int>(std::size(kGreyPhotoScans));
  } else {
    cinfo.scan_info = flat ? kFlatScans : kPhotoScans;
    cinfo.num_scans = flat ? static_cast<int>(std::size(kFlatScans)) : static_cast<int>(std::size(kPhotoScans));
  }
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(image.row(static_cast<int>(cinfo.next_scanline)));
    if (grey) {
      for (int x = 0; x < image.width; ++x) c->grey_row[static_cast<std::size_t>(x)] = row[x * 4];
      row = c->grey_row.data();
    }
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  return std::vector<std::uint8_t>(c->out, c->out + c->out_size);
}

}  // namespace nic::detail
