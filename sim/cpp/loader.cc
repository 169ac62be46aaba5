#include "shiftkit-sim/cpp/loader.h"

#include <dlfcn.h>

#include <stdexcept>
#include <string>

namespace shiftkit_sim {

namespace {

// Resolve one symbol or throw, naming the symbol and the library.
template <typename F>
void resolve(void* handle, const char* name, const std::string& path, F* out) {
  dlerror();
  void* sym = dlsym(handle, name);
  if (sym == nullptr) {
    const char* err = dlerror();
    throw std::runtime_error(std::string("model library ") + path + " lacks symbol " + name +
                             (err ? std::string(": ") + err : std::string()));
  }
  *out = reinterpret_cast<F>(sym);
}

}  // namespace

SimLib::SimLib(void* handle, const SkmApi& api, void* model)
    : handle_(handle), api_(api), model_(model) {}

SimLib::~SimLib() {
  api_.trace_close(model_);
  api_.free_model(model_);
  dlclose(handle_);
}

uint32_t SimLib::port_count() const { return api_.port_count(); }

rust::String SimLib::port_name(uint32_t port) const {
  const char* name = api_.port_name(port);
  return rust::String(name ? name : "");
}

uint32_t SimLib::port_width(uint32_t port) const { return api_.port_width(port); }

bool SimLib::port_is_input(uint32_t port) const { return api_.port_is_input(port) != 0; }

void SimLib::set(uint32_t port, rust::Slice<const uint32_t> words) {
  api_.set(model_, port, words.data());
}

void SimLib::get(uint32_t port, rust::Slice<uint32_t> words) const {
  api_.get(model_, port, words.data());
}

void SimLib::eval() { api_.eval(model_); }

void SimLib::trace_open(rust::Str path) {
  std::string p(path.data(), path.size());
  if (api_.trace_open(model_, p.c_str()) != 0) {
    throw std::runtime_error(api_.trace_kind() == 0
                                 ? "the model was built without tracing"
                                 : "cannot open trace file " + p);
  }
}

void SimLib::trace_dump(uint64_t time) { api_.trace_dump(model_, time); }

void SimLib::trace_close() { api_.trace_close(model_); }

uint32_t SimLib::trace_kind() const { return api_.trace_kind(); }

std::unique_ptr<SimLib> sim_open(rust::Str path) {
  std::string p(path.data(), path.size());
  // RTLD_LOCAL: every design library carries its own Verilator runtime and its own `Vskm`
  // class; they must never resolve against each other (the libraries also hide all but skm_*).
  void* handle = dlopen(p.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = dlerror();
    throw std::runtime_error(err ? std::string(err) : "cannot load " + p);
  }
  SkmApi api{};
  try {
    resolve(handle, "skm_new", p, &api.new_model);
    resolve(handle, "skm_free", p, &api.free_model);
    resolve(handle, "skm_eval", p, &api.eval);
    resolve(handle, "skm_port_count", p, &api.port_count);
    resolve(handle, "skm_port_name", p, &api.port_name);
    resolve(handle, "skm_port_width", p, &api.port_width);
    resolve(handle, "skm_port_is_input", p, &api.port_is_input);
    resolve(handle, "skm_set", p, &api.set);
    resolve(handle, "skm_get", p, &api.get);
    resolve(handle, "skm_trace_open", p, &api.trace_open);
    resolve(handle, "skm_trace_dump", p, &api.trace_dump);
    resolve(handle, "skm_trace_close", p, &api.trace_close);
    resolve(handle, "skm_trace_kind", p, &api.trace_kind);
  } catch (...) {
    dlclose(handle);
    throw;
  }
  void* model = api.new_model();
  if (model == nullptr) {
    dlclose(handle);
    throw std::runtime_error("skm_new failed in " + p);
  }
  return std::make_unique<SimLib>(handle, api, model);
}

}  // namespace shiftkit_sim
