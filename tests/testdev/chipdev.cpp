// chipdev: a small test accelerator for chipbench, registered as PrivateUse1.
//
// The "device" is host memory behind its own allocator (malloc/free with
// statistics: allocated, peak, reset, free/total), a device guard with streams
// and events (a synchronous device: an event records the host clock when it is
// recorded), hooks so that torch.accelerator.* finds it, and operators that run
// through a boxed CPU fallback. Only what the fallback cannot do is native:
// allocation (empty, empty_strided), copies between cpu and the device, resize_,
// and the view ops (a view shares storage, which a copy to the CPU cannot).
// Written for chipbench (tests/testdev); loaded by tests/testdev/build.py.

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/EmptyTensor.h>
#include <ATen/detail/PrivateUse1HooksInterface.h>
#include <ATen/native/CPUFallback.h>
#include <ATen/ops/_reshape_alias_native.h>
#include <ATen/ops/as_strided_native.h>
#include <ATen/ops/_coalesced_native.h>
#include <ATen/ops/_indices_native.h>
#include <ATen/ops/_nnz_native.h>
#include <ATen/ops/_sparse_coo_tensor_with_dims_and_tensors_native.h>
#include <ATen/ops/_values_native.h>
#include <ATen/ops/copy_native.h>
#include <ATen/ops/copy_sparse_to_sparse_native.h>
#include <ATen/ops/dense_dim_native.h>
#include <ATen/ops/empty_native.h>
#include <ATen/ops/indices_native.h>
#include <ATen/ops/is_coalesced_native.h>
#include <ATen/ops/sparse_dim_native.h>
#include <ATen/ops/values_native.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/unfold_native.h>
#include <ATen/ops/view_as_complex_native.h>
#include <ATen/ops/view_as_real_native.h>
#include <ATen/ops/view_native.h>
#include <c10/core/CachingDeviceAllocator.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/library.h>

#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace chipdev {

constexpr c10::DeviceType kType = c10::DeviceType::PrivateUse1;
constexpr c10::DeviceIndex kDevices = 2;
constexpr size_t kHeader = 64; // bytes before each block: its size and device

thread_local c10::DeviceIndex current_device = 0;
thread_local std::array<c10::StreamId, kDevices> current_stream{};

void check_index(c10::DeviceIndex index) {
  TORCH_CHECK(index >= 0 && index < kDevices, "chipdev: no device ", int(index),
              " (there are ", int(kDevices), ")");
}

// ---- memory -------------------------------------------------------------

struct Header {
  size_t size;
  c10::DeviceIndex device;
};

struct Stats {
  c10::CachingAllocator::Stat bytes;  // allocated (= reserved: no cache)
  c10::CachingAllocator::Stat blocks; // number of live allocations
};

std::mutex stats_mutex;
std::array<Stats, kDevices> stats;

void free_block(void* base) {
  auto* header = static_cast<Header*>(base);
  {
    std::lock_guard<std::mutex> lock(stats_mutex);
    stats[header->device].bytes.decrease(header->size);
    stats[header->device].blocks.decrease(1);
  }
  std::free(base);
}

size_t host_bytes(int name) {
  return static_cast<size_t>(sysconf(name)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

struct Allocator final : c10::DeviceAllocator {
  c10::DataPtr allocate(size_t n) override {
    c10::Device device(kType, current_device);
    if (n == 0) {
      return c10::DataPtr(nullptr, device);
    }
    void* base = nullptr;
    TORCH_CHECK_WITH(OutOfMemoryError, posix_memalign(&base, kHeader, kHeader + n) == 0,
                     "chipdev: out of memory allocating ", n, " bytes");
    auto* header = static_cast<Header*>(base);
    header->size = n;
    header->device = current_device;
    {
      std::lock_guard<std::mutex> lock(stats_mutex);
      stats[current_device].bytes.increase(n);
      stats[current_device].blocks.increase(1);
    }
    return c10::DataPtr(static_cast<char*>(base) + kHeader, base, &free_block, device);
  }
  c10::DeleterFnPtr raw_deleter() const override { return nullptr; }
  void copy_data(void* dest, const void* src, size_t count) const override {
    std::memcpy(dest, src, count);
  }
  bool initialized() override { return true; }
  void emptyCache(c10::MempoolId_t) override {} // nothing cached
  void recordStream(const c10::DataPtr&, c10::Stream) override {}
  c10::CachingDeviceAllocator::DeviceStats getDeviceStats(c10::DeviceIndex device) override {
    check_index(device);
    std::lock_guard<std::mutex> lock(stats_mutex);
    c10::CachingDeviceAllocator::DeviceStats out;
    for (size_t i = 0; i < out.allocated_bytes.size(); ++i) {
      if (i == static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE) ||
          i == static_cast<size_t>(c10::CachingAllocator::StatType::LARGE_POOL)) {
        out.allocated_bytes[i] = out.reserved_bytes[i] = out.active_bytes[i] =
            out.requested_bytes[i] = stats[device].bytes;
        out.allocation[i] = out.segment[i] = out.active[i] = stats[device].blocks;
      }
    }
    out.num_device_alloc = stats[device].blocks.allocated;
    out.num_device_free = stats[device].blocks.freed;
    return out;
  }
  void resetAccumulatedStats(c10::DeviceIndex device) override {
    check_index(device);
    std::lock_guard<std::mutex> lock(stats_mutex);
    stats[device].bytes.reset_accumulated();
    stats[device].blocks.reset_accumulated();
  }
  void resetPeakStats(c10::DeviceIndex device) override {
    check_index(device);
    std::lock_guard<std::mutex> lock(stats_mutex);
    stats[device].bytes.reset_peak();
    stats[device].blocks.reset_peak();
  }
  std::pair<size_t, size_t> getMemoryInfo(c10::DeviceIndex device) override {
    check_index(device);
    // Each device is as large as the host's memory; free is what the host has.
    return {host_bytes(_SC_AVPHYS_PAGES), host_bytes(_SC_PHYS_PAGES)};
  }
};

Allocator allocator;
REGISTER_ALLOCATOR(kType, &allocator)

// ---- device guard, streams, events --------------------------------------

struct Event {
  std::chrono::steady_clock::time_point when;
  bool recorded = false;
};

struct Guard final : c10::impl::DeviceGuardImplInterface {
  c10::DeviceType type() const override { return kType; }
  c10::Device exchangeDevice(c10::Device d) const override {
    c10::Device old = getDevice();
    setDevice(d);
    return old;
  }
  c10::Device getDevice() const override { return c10::Device(kType, current_device); }
  void setDevice(c10::Device d) const override {
    check_index(d.index());
    current_device = d.index();
  }
  void uncheckedSetDevice(c10::Device d) const noexcept override {
    if (d.index() >= 0 && d.index() < kDevices) current_device = d.index();
  }
  // A device with no index (`chipdev`) means the current one.
  static c10::Device indexed(c10::Device d) {
    if (d.index() < 0) return c10::Device(kType, current_device);
    check_index(d.index());
    return d;
  }
  c10::Stream getStream(c10::Device d) const override {
    d = indexed(d);
    return c10::Stream(c10::Stream::UNSAFE, d, current_stream[d.index()]);
  }
  c10::Stream getDefaultStream(c10::Device d) const override {
    return c10::Stream(c10::Stream::UNSAFE, indexed(d), 0);
  }
  c10::Stream getNewStream(c10::Device d, int) const override {
    static std::atomic<c10::StreamId> next{1};
    return c10::Stream(c10::Stream::UNSAFE, indexed(d), next++);
  }
  c10::Stream getStreamFromGlobalPool(c10::Device d, bool) const override {
    return getNewStream(d, 0);
  }
  c10::Stream exchangeStream(c10::Stream s) const override {
    c10::Stream old = getStream(s.device());
    current_stream[old.device_index()] = s.id();
    return old;
  }
  c10::DeviceIndex deviceCount() const noexcept override { return kDevices; }
  // The device runs each op before returning: streams and events never wait.
  bool queryStream(const c10::Stream&) const override { return true; }
  void synchronizeStream(const c10::Stream&) const override {}
  void synchronizeDevice(const c10::DeviceIndex) const override {}
  void record(void** event, const c10::Stream& stream, const c10::DeviceIndex,
              const c10::EventFlag) const override {
    TORCH_CHECK(stream.device_type() == kType, "chipdev: an event records on a chipdev stream");
    if (*event == nullptr) *event = new Event();
    auto* e = static_cast<Event*>(*event);
    e->when = std::chrono::steady_clock::now();
    e->recorded = true;
  }
  void block(void*, const c10::Stream&) const override {}
  bool queryEvent(void*) const override { return true; }
  void synchronizeEvent(void*) const override {}
  void destroyEvent(void* event, const c10::DeviceIndex) const noexcept override {
    delete static_cast<Event*>(event);
  }
  double elapsedTime(void* start, void* end, const c10::DeviceIndex) const override {
    auto* a = static_cast<Event*>(start);
    auto* b = static_cast<Event*>(end);
    TORCH_CHECK(a && b && a->recorded && b->recorded,
                "chipdev: both events must be recorded before elapsed_time");
    return std::chrono::duration<double, std::milli>(b->when - a->when).count();
  }
};

C10_REGISTER_GUARD_IMPL(PrivateUse1, Guard);

// ---- hooks: what at::accelerator asks of a PrivateUse1 backend ------------

struct Hooks final : at::PrivateUse1HooksInterface {
  bool isBuilt() const override { return true; }
  bool isAvailable() const override { return true; }
  bool hasPrimaryContext(c10::DeviceIndex) const override { return true; }
  c10::DeviceIndex deviceCount() const override { return kDevices; }
  void setCurrentDevice(c10::DeviceIndex d) const override {
    check_index(d);
    current_device = d;
  }
  c10::DeviceIndex getCurrentDevice() const override { return current_device; }
  c10::DeviceIndex exchangeDevice(c10::DeviceIndex d) const override {
    c10::DeviceIndex old = current_device;
    setCurrentDevice(d);
    return old;
  }
  c10::DeviceIndex maybeExchangeDevice(c10::DeviceIndex d) const override {
    return exchangeDevice(d);
  }
  at::Device getDeviceFromPtr(void* data) const override {
    return c10::Device(kType, current_device);
  }
  // No generator of its own: its operators run as CPU kernels (the fallback), which take a CPU generator.
  const at::Generator& getDefaultGenerator(c10::DeviceIndex) const override {
    return at::detail::getDefaultCPUGenerator();
  }
  at::Generator getNewGenerator(c10::DeviceIndex) const override {
    return at::detail::createCPUGenerator();
  }
  void resizePrivateUse1Bytes(const c10::Storage& storage, size_t bytes) const override {
    c10::DataPtr fresh = allocator.allocate(bytes);
    size_t keep = std::min(bytes, storage.nbytes());
    if (keep > 0) std::memcpy(fresh.get(), storage.data(), keep);
    storage.unsafeGetStorageImpl()->set_data_ptr_noswap(std::move(fresh));
    storage.unsafeGetStorageImpl()->set_nbytes(bytes);
  }
};

const bool hooks_registered = [] {
  at::RegisterPrivateUse1HooksInterface(new Hooks());
  return true;
}();

// ---- native ops ---------------------------------------------------------

c10::DispatchKeySet keys() { return c10::DispatchKeySet(c10::DispatchKey::PrivateUse1); }

at::ScalarType scalar_type_or_default(std::optional<at::ScalarType> dtype) {
  return dtype.value_or(c10::get_default_dtype_as_scalartype());
}

c10::DeviceGuard on_device(std::optional<c10::Device> device) {
  return c10::DeviceGuard(device.value_or(c10::Device(kType, current_device)));
}

at::Tensor empty(at::IntArrayRef size, std::optional<at::ScalarType> dtype,
                 std::optional<at::Layout>, std::optional<at::Device> device,
                 std::optional<bool>, std::optional<at::MemoryFormat> memory_format) {
  auto guard = on_device(device);
  return at::detail::empty_generic(size, &allocator, keys(), scalar_type_or_default(dtype),
                                   memory_format);
}

at::Tensor empty_strided(at::IntArrayRef size, at::IntArrayRef stride,
                         std::optional<at::ScalarType> dtype, std::optional<at::Layout>,
                         std::optional<at::Device> device, std::optional<bool>) {
  auto guard = on_device(device);
  return at::detail::empty_strided_generic(size, stride, &allocator, keys(),
                                           scalar_type_or_default(dtype));
}

// A CPU tensor over the same host memory: copies then run on the CPU kernels.
at::Tensor host_alias(const at::Tensor& t) {
  if (t.device().type() != kType) return t;
  at::Tensor alias = at::from_blob(t.data_ptr(), t.sizes(), t.strides(),
                                   at::TensorOptions().dtype(t.scalar_type()).device(at::kCPU));
  alias._set_conj(t.is_conj()); // lazy conjugate / negation bits: the CPU copy resolves them
  alias._set_neg(t.is_neg());
  return alias;
}

at::Tensor copy_from(const at::Tensor& self, const at::Tensor& dst, bool) {
  TORCH_CHECK(self.sizes() == dst.sizes(), "chipdev: _copy_from needs equal shapes, got ",
              self.sizes(), " and ", dst.sizes());
  if (dst.numel() > 0) host_alias(dst).copy_(host_alias(self));
  return dst;
}

const at::Tensor& resize(const at::Tensor& self, at::IntArrayRef size,
                         std::optional<at::MemoryFormat> memory_format) {
  auto* impl = self.unsafeGetTensorImpl();
  impl->set_sizes_contiguous(size);
  if (memory_format.has_value()) impl->empty_tensor_restride(*memory_format);
  size_t need = static_cast<size_t>(impl->storage_offset() + self.numel()) * self.itemsize();
  if (self.numel() > 0 && need > self.storage().nbytes()) {
    at::detail::getPrivateUse1Hooks().resizePrivateUse1Bytes(self.storage(), need);
  }
  return self;
}

at::Tensor copy_from_and_resize(const at::Tensor& self, const at::Tensor& dst) {
  resize(dst, self.sizes(), std::nullopt);
  return copy_from(self, dst, false);
}

void fallback(const c10::OperatorHandle& op, torch::jit::Stack* stack) {
  at::native::cpu_fallback(op, stack);
}

// Sparse COO tensors (an nn.EmbeddingBag's sparse gradient): torch's device-generic sparse kernels
// for what holds a sparse tensor together, the rest on SparseCPU through the same fallback.
// The fallback's copy of a sparse result back onto the device (its arguments dispatch as SparseCPU).
at::Tensor sparse_copy_from_and_resize(const at::Tensor& self, const at::Tensor& dst) {
  at::Tensor out = dst;
  return out.copy_(self);
}

void sparse_fallback(const c10::OperatorHandle& op, torch::jit::Stack* stack) {
  at::native::cpu_fallback(op, stack, false, c10::DispatchKey::SparseCPU);
}

// Statistics for the Python device module (torch.ops.chipdev.*).
std::vector<int64_t> memory_stats(int64_t device) {
  check_index(static_cast<c10::DeviceIndex>(device));
  std::lock_guard<std::mutex> lock(stats_mutex);
  const auto& s = stats[device];
  return {s.bytes.current, s.bytes.peak, s.blocks.current};
}

int64_t device_count() { return kDevices; }

void reset_peak(int64_t device) { allocator.resetPeakStats(static_cast<c10::DeviceIndex>(device)); }

} // namespace chipdev

TORCH_LIBRARY_IMPL(aten, PrivateUse1, m) {
  m.impl("empty.memory_format", TORCH_FN(chipdev::empty));
  m.impl("empty_strided", TORCH_FN(chipdev::empty_strided));
  m.impl("_copy_from", TORCH_FN(chipdev::copy_from));
  m.impl("_copy_from_and_resize", TORCH_FN(chipdev::copy_from_and_resize));
  m.impl("resize_", TORCH_FN(chipdev::resize));
  m.impl("as_strided", TORCH_FN(at::native::as_strided_tensorimpl));
  m.impl("view", TORCH_FN(at::native::view));
  m.impl("_reshape_alias", TORCH_FN(at::native::_reshape_alias));
  m.impl("unfold", TORCH_FN(at::native::unfold));
  m.impl("view_as_real", TORCH_FN(at::native::view_as_real));
  m.impl("view_as_complex", TORCH_FN(at::native::view_as_complex));
}

// The copies take lazily conjugated or negated tensors as they are (host_alias keeps the bits): else
// the Conjugate/Negative fallbacks would materialise them by a clone, which copies, which recurses.
TORCH_LIBRARY_IMPL(aten, Conjugate, m) {
  m.impl("_copy_from", torch::CppFunction::makeFallthrough());
  m.impl("_copy_from_and_resize", torch::CppFunction::makeFallthrough());
}

TORCH_LIBRARY_IMPL(aten, Negative, m) {
  m.impl("_copy_from", torch::CppFunction::makeFallthrough());
  m.impl("_copy_from_and_resize", torch::CppFunction::makeFallthrough());
}

TORCH_LIBRARY_IMPL(aten, SparsePrivateUse1, m) {
  m.impl("_sparse_coo_tensor_with_dims_and_tensors",
         TORCH_FN(at::native::new_with_dims_and_tensor_sparse_symint));
  m.impl("empty.memory_format", TORCH_FN(at::native::empty_sparse));
  m.impl("_indices", TORCH_FN(at::native::_indices_sparse));
  m.impl("_values", TORCH_FN(at::native::_values_sparse));
  m.impl("indices", TORCH_FN(at::native::indices_sparse));
  m.impl("values", TORCH_FN(at::native::values_sparse));
  m.impl("_nnz", TORCH_FN(at::native::_nnz_sparse));
  m.impl("sparse_dim", TORCH_FN(at::native::sparse_dim_sparse));
  m.impl("dense_dim", TORCH_FN(at::native::dense_dim_sparse));
  m.impl("is_coalesced", TORCH_FN(at::native::is_coalesced_sparse));
  m.impl("_coalesced_", TORCH_FN(at::native::_coalesced_sparse_));
  m.impl("copy_", TORCH_FN(at::native::copy_sparse_wrapper_));
  m.impl("copy_sparse_to_sparse_", TORCH_FN(at::native::copy_sparse_));
  m.impl("_copy_from_and_resize", TORCH_FN(chipdev::sparse_copy_from_and_resize));
}

TORCH_LIBRARY_IMPL(aten, SparseCPU, m) {
  m.impl("_copy_from_and_resize", TORCH_FN(chipdev::sparse_copy_from_and_resize));
}

TORCH_LIBRARY_IMPL(_, SparsePrivateUse1, m) {
  m.fallback(torch::CppFunction::makeFromBoxedFunction<&chipdev::sparse_fallback>());
}

TORCH_LIBRARY_IMPL(_, PrivateUse1, m) {
  m.fallback(torch::CppFunction::makeFromBoxedFunction<&chipdev::fallback>());
}

TORCH_LIBRARY(chipdev, m) {
  m.def("memory_stats(int device) -> int[]", &chipdev::memory_stats);
  m.def("reset_peak(int device) -> ()", &chipdev::reset_peak);
  m.def("device_count() -> int", &chipdev::device_count);
}
