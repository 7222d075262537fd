"""The kinds of op the kernel models build, one enum: what the lowering's tables (CUDA templates, simulator
semantics, proxy fences) are keyed by. A kind is a `str` (StrEnum), so schedule files and problems read from
YAML keep plain strings, and generic problems may use kinds of their own."""

from __future__ import annotations

from enum import StrEnum


class OpKind(StrEnum):
    TMA_LOAD = "tma_load"  # a TMA copy into a shared-memory ring slot
    MMA = "mma"  # gemm: wgmma with both operands in shared memory
    DEQUANT = "dequant"  # quant_gemm: packed codes to the MMA type, in registers (or a staging slot)
    WGMMA_RS = "wgmma_rs"  # quant_gemm: wgmma with A from registers
    WGMMA_QK = "wgmma_qk"  # attention: S = Q K^T
    ROW_MAX = "row_max"
    SCALE = "scale"  # S * scale - m
    EXP2 = "exp2"
    ROW_SUM = "row_sum"
    RESCALE_O = "rescale_o"
    WGMMA_PV = "wgmma_pv"  # attention: O += P V
    TCGEN05_QK = "tcgen05_qk"  # Blackwell: S = Q K^T into tensor memory
    TCGEN05_PV = "tcgen05_pv"
    TMEM_LOAD_S = "tmem_load_s"
    TMEM_STORE_P = "tmem_store_p"
    TMEM_LOAD_O = "tmem_load_o"
    TMEM_STORE_O = "tmem_store_o"
