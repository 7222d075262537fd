"""warpsched in the frameworks people run models with. Each module imports its framework only when used:

warpsched.integrations.transformers   Hugging Face transformers: attn_implementation="warpsched" and
                                      GPTQ/AWQ linear layers swapped for warpsched's quantized GEMM
"""
