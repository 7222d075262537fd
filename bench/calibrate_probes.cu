// Microbenchmarks of one SM for bench/calibrate.py: each kernel times its loop with clock64() on the SM and
// writes the cycles of every warp (or of its leader) to `cycles`. Built for sm_90a with the project's
// toolchain and CUTLASS/CuTe headers; nothing here is generated.
#include <cuda.h>
#include <cute/tensor.hpp>
#include <cute/arch/copy_sm90.hpp>
#include <cute/arch/mma_sm90.hpp>
#include <cute/atom/mma_traits_sm90_gmma.hpp>
#include <cutlass/arch/barrier.h>
#include <cutlass/bfloat16.h>

using namespace cute;
using Element = cutlass::bfloat16_t;
using Full = cutlass::arch::ClusterTransactionBarrier;
using Bar = cutlass::arch::ClusterBarrier;

constexpr int CHAINS = 8;  // independent dependency chains per thread in the throughput probes

// -- pipes: a warp instruction's issue cycles on its sub-partition (chains = CHAINS, every sub-partition
// holding `blockDim / 128` warps) and its dependent latency (one warp, chains = 1) -------------------------
template <int PIPE>
__device__ __forceinline__ void step(uint32_t (&u)[CHAINS], float (&x)[CHAINS], int chains) {
  CUTE_UNROLL
  for (int i = 0; i < CHAINS; ++i) {
    if (i >= chains) break;
    if constexpr (PIPE == 0) asm volatile("ex2.approx.ftz.f32 %0, %0;" : "+f"(x[i]));
    if constexpr (PIPE == 1) asm volatile("fma.rn.f32 %0, %0, 0f3F7FF000, 0f3A800000;" : "+f"(x[i]));
    if constexpr (PIPE == 2) asm volatile("lop3.b32 %0, %0, %1, %2, 0xE8;" : "+r"(u[i]) : "r"(u[(i + 1) % CHAINS]), "r"(u[(i + 3) % CHAINS]));
  }
}

template <int PIPE>
__device__ void pipe_probe(float* sink, long long* cycles, int reps, int chains) {
  uint32_t u[CHAINS];
  float x[CHAINS];
  CUTE_UNROLL
  for (int i = 0; i < CHAINS; ++i) {
    u[i] = threadIdx.x * 2654435761u + i;
    x[i] = -0.001f * float(threadIdx.x + i);
  }
  __syncthreads();
  const long long t0 = clock64();
  for (int r = 0; r < reps; ++r) step<PIPE>(u, x, chains);
  const long long t1 = clock64();
  float acc = 0.f;
  CUTE_UNROLL
  for (int i = 0; i < CHAINS; ++i) acc += x[i] + float(u[i] & 1u);
  sink[threadIdx.x] = acc;
  if (threadIdx.x % 32 == 0) cycles[threadIdx.x / 32] = t1 - t0;
}

extern "C" __global__ void probe_mufu(float* sink, long long* cycles, int reps, int chains) { pipe_probe<0>(sink, cycles, reps, chains); }
extern "C" __global__ void probe_fma(float* sink, long long* cycles, int reps, int chains) { pipe_probe<1>(sink, cycles, reps, chains); }
extern "C" __global__ void probe_alu(float* sink, long long* cycles, int reps, int chains) { pipe_probe<2>(sink, cycles, reps, chains); }

// -- hand-offs between two warpgroups: `reps` round trips, timed by warpgroup 0 -------------------------------
// mbarrier: warpgroup 0's leader arrives on `ping` and waits for `pong`; warpgroup 1's the other way round
extern "C" __global__ void __launch_bounds__(256, 1) probe_mbarrier(long long* cycles, int reps) {
  __shared__ uint64_t ping, pong;
  if (threadIdx.x == 0) {
    Bar::init(&ping, 1);
    Bar::init(&pong, 1);
    cutlass::arch::fence_barrier_init();
  }
  __syncthreads();
  if (threadIdx.x % 128) return;
  const long long t0 = clock64();
  for (int r = 0; r < reps; ++r) {
    if (threadIdx.x == 0) {
      Bar::arrive(&ping);
      Bar::wait(&pong, r & 1);
    } else {
      Bar::wait(&ping, r & 1);
      Bar::arrive(&pong);
    }
  }
  if (threadIdx.x == 0) cycles[0] = clock64() - t0;
}

// named barriers: warpgroup 0 syncs on 1 and arrives on 2, warpgroup 1 arrives on 1 and syncs on 2
extern "C" __global__ void __launch_bounds__(256, 1) probe_named_barrier(long long* cycles, int reps) {
  const long long t0 = clock64();
  for (int r = 0; r < reps; ++r) {
    if (threadIdx.x < 128) {
      asm volatile("bar.sync 1, 256;" ::: "memory");
      asm volatile("bar.arrive 2, 256;" ::: "memory");
    } else {
      asm volatile("bar.arrive 1, 256;" ::: "memory");
      asm volatile("bar.sync 2, 256;" ::: "memory");
    }
  }
  if (threadIdx.x == 0) cycles[0] = clock64() - t0;
}

// -- fence.proxy.async after shared loads, as a quant_gemm consumer fences before it releases a TMA slot it
// read with LDS (ptxas: MEMBAR.ALL.CTA, FENCE.VIEW.ASYNC.S): one warpgroup, each round a 128-bit load whose
// address depends on the round before, then the fence (FENCE) or not; the difference per round is what the
// fence costs beyond the load it waits for. ---------------------------------------------------------------
template <bool FENCE>
__device__ void fence_probe(long long* cycles, int reps) {
  __shared__ uint4 words[512];
  for (int i = threadIdx.x; i < 512; i += blockDim.x) words[i] = make_uint4(i, 3 * i, 5 * i, 7 * i);
  __syncthreads();
  uint32_t at = threadIdx.x;
  const long long t0 = clock64();
  for (int r = 0; r < reps; ++r) {
    const uint4 v = words[at % 512];
    if constexpr (FENCE) cutlass::arch::fence_view_async_shared();
    at += (v.x ^ v.y ^ v.z ^ v.w) | 1u;
  }
  const long long t1 = clock64();
  if (threadIdx.x == 0) cycles[0] = t1 - t0, cycles[1] = at;
}
extern "C" __global__ void __launch_bounds__(128, 1) probe_fenced_loads(long long* cycles, int reps) { fence_probe<true>(cycles, reps); }
extern "C" __global__ void __launch_bounds__(128, 1) probe_loads(long long* cycles, int reps) { fence_probe<false>(cycles, reps); }

// -- wgmma: one warpgroup, m64nNk16 with K = 64 per batch (four instructions), A and B zero in shared memory
// (SS) or A from registers (RS). WAIT: warpgroup_wait<0> after every batch (latency), else only at the end
// (throughput). ------------------------------------------------------------------------------------------------
template <int N, bool RS, bool WAIT>
__device__ void wgmma_probe(long long* cycles, int reps) {
  extern __shared__ char smem_raw[];
  using LayoutA = decltype(tile_to_shape(GMMA::Layout_K_SW128_Atom<Element>{}, make_shape(Int<64>{}, Int<64>{})));
  using LayoutB = decltype(tile_to_shape(GMMA::Layout_K_SW128_Atom<Element>{}, make_shape(Int<N>{}, Int<64>{})));
  Element* a = reinterpret_cast<Element*>(smem_raw);
  Element* b = a + 64 * 64;
  for (int i = threadIdx.x; i < (64 + N) * 64; i += blockDim.x) a[i] = Element(0.f);
  cutlass::arch::fence_view_async_shared();
  __syncthreads();
  Tensor sA = make_tensor(make_smem_ptr(a), LayoutA{});
  Tensor sB = make_tensor(make_smem_ptr(b), LayoutB{});
  long long t0 = 0;
  if constexpr (RS) {
    auto mma = make_tiled_mma(GMMA::rs_op_selector<Element, Element, float, Shape<_64, Int<N>, _16>>());
    auto thr = mma.get_thread_slice(threadIdx.x % 128);
    Tensor acc = partition_fragment_C(mma, Shape<_64, Int<N>>{});
    Tensor ra = make_tensor<Element>(shape(thr.partition_A(make_identity_tensor(Shape<_64, _64>{}))));
    clear(acc);
    CUTE_UNROLL
    for (int i = 0; i < size(ra); ++i) ra(i) = Element(0.f);
    t0 = clock64();
    for (int r = 0; r < reps; ++r) {
      warpgroup_fence_operand(acc);
      warpgroup_arrive();
      gemm(mma, ra, thr.make_fragment_B(thr.partition_B(sB)), acc);
      warpgroup_commit_batch();
      if constexpr (WAIT) warpgroup_wait<0>();
    }
    warpgroup_wait<0>();
    warpgroup_fence_operand(acc);
    if (acc(0) != 0.f) cycles[1] = 1;  // keeps the accumulator alive
  } else {
    auto mma = make_tiled_mma(GMMA::ss_op_selector<Element, Element, float, Shape<_64, Int<N>, _16>>());
    auto thr = mma.get_thread_slice(threadIdx.x % 128);
    Tensor acc = partition_fragment_C(mma, Shape<_64, Int<N>>{});
    clear(acc);
    t0 = clock64();
    for (int r = 0; r < reps; ++r) {
      warpgroup_fence_operand(acc);
      warpgroup_arrive();
      gemm(mma, thr.make_fragment_A(thr.partition_A(sA)), thr.make_fragment_B(thr.partition_B(sB)), acc);
      warpgroup_commit_batch();
      if constexpr (WAIT) warpgroup_wait<0>();
    }
    warpgroup_wait<0>();
    warpgroup_fence_operand(acc);
    if (acc(0) != 0.f) cycles[1] = 1;
  }
  if (threadIdx.x == 0) cycles[0] = clock64() - t0;
}

#define WGMMA_PROBE(N, RS, WAIT, NAME) \
  extern "C" __global__ void __launch_bounds__(128, 1) NAME(long long* cycles, int reps) { wgmma_probe<N, RS, WAIT>(cycles, reps); }
WGMMA_PROBE(64, false, true, probe_wgmma_ss_n64_wait)
WGMMA_PROBE(64, false, false, probe_wgmma_ss_n64_stream)
WGMMA_PROBE(128, false, true, probe_wgmma_ss_n128_wait)
WGMMA_PROBE(128, false, false, probe_wgmma_ss_n128_stream)
WGMMA_PROBE(256, false, true, probe_wgmma_ss_n256_wait)
WGMMA_PROBE(256, false, false, probe_wgmma_ss_n256_stream)
WGMMA_PROBE(64, true, true, probe_wgmma_rs_n64_wait)
WGMMA_PROBE(64, true, false, probe_wgmma_rs_n64_stream)
WGMMA_PROBE(128, true, true, probe_wgmma_rs_n128_wait)
WGMMA_PROBE(128, true, false, probe_wgmma_rs_n128_stream)
WGMMA_PROBE(256, true, true, probe_wgmma_rs_n256_wait)
WGMMA_PROBE(256, true, false, probe_wgmma_rs_n256_stream)

// -- the TMA unit (bulk copies global -> shared completing on an mbarrier): each CTA streams `reps` rounds of
// `inflight` copies of `bytes` each from its own part of `src`; its leader times each round from issue to
// the barrier's phase flip. One CTA: latency; one per SM: throughput against bytes in flight. ---------------
extern "C" __global__ void __launch_bounds__(128, 1) probe_bulk_copy(const char* src, long long* cycles, int bytes, int inflight, int reps) {
  extern __shared__ __align__(128) char buffer[];
  __shared__ uint64_t full;
  if (threadIdx.x == 0) {
    Full::init(&full, 1);
    cutlass::arch::fence_barrier_init();
  }
  __syncthreads();
  if (threadIdx.x) return;
  const char* base = src + size_t(blockIdx.x) * size_t(bytes) * inflight * reps;
  long long total = 0;
  for (int r = 0; r < reps; ++r) {
    const long long t0 = clock64();
    Full::arrive_and_expect_tx(&full, uint32_t(bytes) * inflight);
    for (int i = 0; i < inflight; ++i)
      SM90_BULK_COPY_G2S::copy(base + (size_t(r) * inflight + i) * bytes, &full, buffer + i * bytes, bytes);
    Full::wait(&full, r & 1);
    total += clock64() - t0;
  }
  cycles[blockIdx.x] = total;
}

extern "C" __global__ void probe_empty() {}
