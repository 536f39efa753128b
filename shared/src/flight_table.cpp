#include "nic/flight_table.h"

#include <algorithm>

namespace nic {

Join FlightTable::join(std::string_view key, std::int64_t now_ms) {
  const std::string k(key);
  if (auto it = by_key_.find(k); it != by_key_.end()) {
    const WaiterId w = next_waiter_++;
    flights_[it->second].followers.push_back({w, now_ms + timeout_ms_});
    ++counts_.followers;
    return Join{it->second, w, false};
  }
  const FlightId id = next_flight_++;
  by_key_.emplace(k, id);
  flights_.emplace(id, Flight{k, {}});
  ++counts_.flights;
  return Join{id, 0, true};
}

std::vector<WaiterId> FlightTable::finish(FlightId flight) {
  std::vector<WaiterId> out;
  auto it = flights_.find(flight);
  if (it == flights_.end()) return out;
  out.reserve(it->second.followers.size());
  for (const auto& f : it->second.followers) out.push_back(f.id);
  by_key_.erase(it->second.key);
  flights_.erase(it);
  return out;
}

std::vector<WaiterId> FlightTable::complete(FlightId flight) {
  if (flights_.count(flight) != 0) ++counts_.completed;
  return finish(flight);
}

std::vector<WaiterId> FlightTable::fail(FlightId flight) {
  if (flights_.count(flight) != 0) ++counts_.failed;
  return finish(flight);
}

bool FlightTable::leave(FlightId flight, WaiterId waiter) {
  auto it = flights_.find(flight);
  if (it == flights_.end()) return false;
  auto& fs = it->second.followers;
  const auto before = fs.size();
  fs.erase(std::remove_if(fs.begin(), fs.end(), [&](const Follower& f) { return f.id == waiter; }), fs.end());
  return fs.size() != before;
}

std::vector<std::pair<FlightId, WaiterId>> FlightTable::expire(std::int64_t now_ms) {
  std::vector<std::pair<FlightId, WaiterId>> out;
  for (auto& [id, flight] : flights_) {
    auto& fs = flight.followers;
    for (const auto& f : fs) {
      if (f.deadline_ms <= now_ms) out.emplace_back(id, f.id);
    }
    fs.erase(std::remove_if(fs.begin(), fs.end(), [&](const Follower& f) { return f.deadline_ms <= now_ms; }),
             fs.end());
  }
  counts_.timed_out += out.size();
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<std::int64_t> FlightTable::next_deadline() const {
  std::optional<std::int64_t> best;
  for (const auto& [id, flight] : flights_) {
    for (const auto& f : flight.followers) {
      if (!best || f.deadline_ms < *best) best = f.deadline_ms;
    }
  }
  return best;
}

std::size_t FlightTable::waiting(FlightId flight) const {
  auto it = flights_.find(flight);
  return it == flights_.end() ? 0 : it->second.followers.size();
}

std::optional<FlightId> FlightTable::find(std::string_view key) const {
  auto it = by_key_.find(std::string(key));
  if (it == by_key_.end()) return std::nullopt;
  return it->second;
}

}  // namespace nic
