// Host side of the co-simulation: dlopen()s one per-design model library (built by
// shiftkit-sim, see src/wrapper.rs for the C ABI it exports) and forwards to it.
//
// The class knows nothing about any particular design: everything design-specific sits behind
// the fixed `skm_*` C ABI, so this file is compiled once (by cxx-build) and loads any design.
#pragma once
#include <cstdint>
#include <memory>

#include "rust/cxx.h"

namespace shiftkit_sim {

// The fixed C ABI of a model library, resolved with dlsym.
struct SkmApi {
  void* (*new_model)();
  void (*free_model)(void*);
  void (*eval)(void*);
  uint32_t (*port_count)();
  const char* (*port_name)(uint32_t);
  uint32_t (*port_width)(uint32_t);
  int (*port_is_input)(uint32_t);
  void (*set)(void*, uint32_t, const uint32_t*);
  void (*get)(void*, uint32_t, uint32_t*);
  int (*trace_open)(void*, const char*);
  void (*trace_dump)(void*, uint64_t);
  void (*trace_close)(void*);
  uint32_t (*trace_kind)();
};

// One model instance inside one loaded library. Owns both: the destructor frees the model and
// drops this instance's reference on the library (dlopen reference-counts, so several instances
// of one design, and instances of different designs, coexist in one process).
class SimLib {
 public:
  SimLib(void* handle, const SkmApi& api, void* model);
  ~SimLib();
  SimLib(const SimLib&) = delete;
  SimLib& operator=(const SimLib&) = delete;

  uint32_t port_count() const;
  rust::String port_name(uint32_t port) const;
  uint32_t port_width(uint32_t port) const;
  bool port_is_input(uint32_t port) const;
  // The Rust side checks port indices and slice lengths; these only forward.
  void set(uint32_t port, rust::Slice<const uint32_t> words);
  void get(uint32_t port, rust::Slice<uint32_t> words) const;
  void eval();
  void trace_open(rust::Str path);  // throws on failure (-> Err on the Rust side)
  void trace_dump(uint64_t time);
  void trace_close();
  uint32_t trace_kind() const;  // 0 none, 1 VCD, 2 FST

 private:
  void* handle_;
  SkmApi api_;
  void* model_;
};

// Load `path` and create one model instance; throws std::runtime_error with dlerror()'s text.
std::unique_ptr<SimLib> sim_open(rust::Str path);

}  // namespace shiftkit_sim
