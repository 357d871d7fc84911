// faults: each classic mistake as a change to one rank's parameters (see faults.hpp).
#include "tp_mlp/faults.hpp"

#include <type_traits>

#include "tp_mlp/init.hpp"
#include "tp_mlp/partition.hpp"

namespace tp_mlp {

namespace {

template <typename Parameters>
void plant(Fault fault, const Parameters& p, const Config& cfg, const TpComm& tp) {
  using Scalar = typename std::remove_pointer_t<decltype(p.w_out)>::Scalar;
  const bool last = tp.rank() == tp.size() - 1;
  const long H = cfg.hidden_size, F = cfg.intermediate_size();
  switch (fault) {
    case Fault::none:
    case Fault::one_ulp:  // not a parameter's: see plant_fault
    case Fault::kv_grad_not_summed:
    case Fault::wrong_kv_head:
    case Fault::norm_grad_not_summed: return;  // the attention block's, the layer's: see below
    case Fault::missing_partial_sum:
      if (last) p.w_out->setZero();
      return;
    case Fault::duplicate_shard:
      if (last) {  // the first columns again, as many as this rank holds
        const Block first = {0, p.columns.count};
        fill_first_layer(*p.w_in, cfg, LayerPart::weight, {0, H}, first);
        fill_block(*p.w_out, master_w2(cfg), cfg.seed, 0, 0);
      }
      return;
    case Fault::bias_on_every_rank: *p.b_out *= float(tp.size()); return;
    case Fault::w2_over_t: *p.w_out /= Scalar(float(tp.size())); return;
    case Fault::gate_up_split: {
      // This rank's columns of [W1 | W3] taken as one [H, 2F] matrix, instead of its columns
      // of each.
      const long first = block_of(2 * F, tp.size(), tp.rank()).first;
      for (long c = 0; c < p.w_in->cols(); ++c) {
        const long column = (first + c) % (2 * F);
        fill_block(p.w_in->middleCols(c, 1), column < F ? master_w1(cfg) : master_w3(cfg), cfg.seed,
                   0, column % F);
      }
      return;
    }
  }
}

}  // namespace

void plant_fault(Fault fault, MlpScheme& mlp, const Config& cfg, const TpComm& tp) {
  if (fault == Fault::none) return;
  if (fault == Fault::one_ulp) {
    mlp.plant_one_ulp();
    return;
  }
  if (is_attention_fault(fault) || is_layer_fault(fault)) {
    mlp.plant_block_fault(fault);
    return;
  }
  if (cfg.dtype == DType::bf16)
    plant(fault, mlp.parameters_bf16(), cfg, tp);
  else
    plant(fault, mlp.parameters(), cfg, tp);
  mlp.parameters_changed();
}

}  // namespace tp_mlp
