// launch: the job and the machine, as the banner describes them: measured or read at start-up.
#pragma once

namespace tp_mlp {

struct Launch {
  int world_size = 1;
  int tp_groups = 1;
  const char* gemm_backend = "";
  const char* bf16_gemm = "";   // how a bf16 product runs here
  double peak_gflops = 0;       // one core's fp32 FMA peak, measured...
  const char* peak_isa = "";    // ...with the GEMMs' widest vectors: "AVX-512", "AVX2", "SSE"
  double bf16_peak_gflops = 0;  // its bf16 dot-product peak; 0 without native bf16
  bool amx_bf16 = false;        // that peak is AMX's tiles', not the vector units'
  int ranks_on_node = 1;        // rank 0's node
  int cores_on_node = 1;        // the CPUs its ranks may run on
  bool oversubscribed = false;  // more ranks than cores on some node
};

}  // namespace tp_mlp
