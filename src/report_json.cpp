// report_json: the JSON document (see report_json.hpp and the README's key table).
#include "tp_mlp/report_json.hpp"

#include <cstdio>

#include "tp_mlp/invariant_blocking.hpp"
#include "tp_mlp/output.hpp"

namespace tp_mlp {
namespace {

using nlohmann::json;

json summary_json(const Summary& s) {
  return {{"mean", s.mean}, {"median", s.median}, {"min", s.min}, {"max", s.max}};
}

// A kind of step's timings: the whole step under `total_key`, its parts, and its floor.
void add_timing(json& j, const char* total_key, const StepTiming& t, const Summary& floor) {
  j[total_key] = summary_json(t.total);
  j["compute_ms"] = summary_json(t.compute);
  j["comm_ms"] = summary_json(t.comm);
  j["floor_ms"] = summary_json(floor);
}

json verification_json(const Verification& v) {
  return {{"tensor", v.tensor},
          {"passed", v.passed},
          {"max_abs_diff", v.max_abs_diff},
          {"max_rel_diff", v.max_rel_diff},
          {"tolerance", v.tolerance},
          {"max_diff_over_bound", v.max_diff_over_bound},
          {"accumulated_terms", v.accumulated_terms}};
}

json traffic_json(const PassTraffic& p) {
  json counted;
  for (Collective kind : kCollectives)
    counted[collective_key(kind)] = {{"calls", p.counted[kind].calls},
                                     {"bytes", p.counted[kind].bytes}};
  counted["calls"] = p.counted.calls();
  counted["bytes"] = p.counted.bytes();
  counted["ring_bytes_per_rank"] = p.counted_ring;
  return {{"counted", counted},
          {"formula",
           {{"calls", p.formula.calls()},
            {"bytes", p.formula.bytes()},
            {"ring_bytes_per_rank", p.formula_ring}}},
          {"matches_formula", p.matches_formula},
          {"flops_per_rank", p.flops_per_rank}};
}

// Every rank's share of a split length, in rank order.
json share_json(const Share& s) { return {{"length", s.length}, {"per_rank", s.per_rank()}}; }

json config_json(const Config& cfg, const RunPlan& plan, const Launch& launch) {
  return {{"tp_size", cfg.tp_size},
          {"world_size", launch.world_size},
          {"tp_groups", launch.tp_groups},
          {"hidden_size", cfg.hidden_size},
          {"intermediate_size", cfg.intermediate_size()},
          {"batch_size", cfg.batch_size},
          {"seq_len", cfg.seq_len},
          {"iterations", cfg.iterations},
          {"warmup", cfg.warmup},
          {"seed", cfg.seed},
          {"scheme", choice_name(cfg.scheme_choice)},
          {"backward", cfg.backward},
          {"bias", cfg.bias},
          {"sequence_parallel", cfg.sequence_parallel},
          {"overlap", cfg.overlap},
          {"invariant", cfg.invariant},
          {"overlap_chunks", cfg.overlap ? plan.overlap_chunks : cfg.overlap_chunks},
          {"gemm_backend", launch.gemm_backend},
          {"activation", activation_name(cfg.activation)},
          {"ffn_hidden_size", cfg.intermediate_size()},
          {"plant_fault", fault_name(cfg.fault)},
          {"dtype", dtype_name(cfg.dtype)},
          {"reduce_dtype", dtype_name(cfg.reduction())},
          {"timeout", cfg.timeout},
          {"block", block_name(cfg.block)},
          {"model", cfg.model},
          {"num_heads", cfg.heads()},
          {"num_kv_heads", cfg.kv_heads()},
          {"rope_theta", cfg.rope_base()},
          {"norm", norm_name(cfg.norm_kind())}};
}

// --block attention: the heads, who holds which, and its collectives against the formulas.
json attention_json(const AttentionHeads& a, const std::optional<AttentionTraffic>& traffic) {
  json ranks = json::array();
  for (std::size_t r = 0; r < a.ranks.size(); ++r)
    ranks.push_back(
        {{"rank", r},
         {"query_heads", {{"first", a.ranks[r].query.first}, {"count", a.ranks[r].query.count}}},
         {"kv_heads", {{"first", a.ranks[r].kv.first}, {"count", a.ranks[r].kv.count}}}});
  json j = {{"num_heads", a.query_heads},
            {"num_kv_heads", a.kv_heads},
            {"head_size", a.head_size},
            {"rope_theta", a.rope_theta},
            {"ranks", ranks},
            {"replicated_kv_heads", a.replicated},
            {"kv_heads_held", a.kv_heads_held}};
  if (!traffic) return j;
  j["communication"] = {{"y_allreduces_per_pass", traffic->layer ? 2 : 1},
                        {"forward_allreduce_bytes_formula", traffic->y_bytes},
                        {"backward_dx_allreduce_bytes_formula", traffic->y_bytes},
                        {"replica_grad_allreduce_bytes_formula", traffic->replica_bytes},
                        {"forward_counted_calls", traffic->forward.calls()},
                        {"forward_counted_bytes", traffic->forward.bytes()},
                        {"backward_counted_calls", traffic->backward.calls()},
                        {"backward_counted_bytes", traffic->backward.bytes()},
                        {"matches_formula", traffic->matches_formula}};
  return j;
}

// schemes.<name>: its verification, traffic and speed.
void add_schemes(json& schemes, const Metrics& m) {
  for (const SchemeChecks& c : m.verification.schemes) {
    json& j = schemes[scheme_name(c.scheme)];
    j["verification"] = verification_json(c.output);
    j["verification"]["passed"] = c.passed;
    for (const TensorDigest& d : c.digests) {
      char hex[24];  // 64 bits do not fit a JSON number exactly: a hexadecimal string
      std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(d.value));
      j["digests"][d.tensor] = hex;
    }
    j["digests_copies_match"] = c.copies_match;
    for (const Verification& g : c.gradients)
      j["backward"]["verification"][g.tensor] = verification_json(g);
    for (const Verification& b : c.blocks) j["block_verification"][b.tensor] = verification_json(b);
  }
  for (const PassTraffic& p : m.communication.passes) {
    json& j = schemes[scheme_name(p.scheme)];
    if (p.direction == Direction::backward) {
      j["backward"].update(traffic_json(p));
      continue;
    }
    j["allreduce_calls_per_forward"] = p.counted[Collective::all_reduce].calls;
    j["allreduce_bytes_per_forward"] = p.counted[Collective::all_reduce].bytes;
    j["forward"] = traffic_json(p);
  }
  for (const SchemeMemory& s : m.scaling.schemes)
    schemes[scheme_name(s.scheme)]["boundary_activation_bytes"] = s.boundary_bytes;
  for (const SchemeSpeed& s : m.benchmark.schemes) {
    json& j = schemes[scheme_name(s.scheme)];
    add_timing(j, "forward_ms", s.timing, s.floor);
    j["compute_imbalance"] = s.compute_imbalance;
    j["overlapped_bound_ms"] = s.forward.overlapped_bound_ms;
    if (s.forward.hidden) j["hidden_fraction"] = *s.forward.hidden;
    j["gflops_per_rank"] = s.forward.gflops_per_rank;
    j["percent_of_peak"] = s.forward.percent_of_peak;
    j["bound_ms"] = s.forward.bound_ms;
    j["forward_over_bound"] = s.forward.over_bound;
    if (s.speedup) j["speedup_vs_serial"] = *s.speedup;
    if (s.efficiency) j["parallel_efficiency"] = *s.efficiency;
    if (!s.has_backward) continue;
    json& b = j["backward"];
    add_timing(b, "step_ms", s.train_timing, s.train_floor);
    b["overlapped_bound_ms"] = s.train.overlapped_bound_ms;
    if (s.train.hidden) b["hidden_fraction"] = *s.train.hidden;
    b["gflops_per_rank"] = s.train.gflops_per_rank;
    b["bound_ms"] = s.train.bound_ms;
  }
}

}  // namespace

json report_json(const Config& cfg, const RunPlan& plan, const Launch& launch, const Metrics& m) {
  json doc;
  doc["schema_version"] = kSchemaVersion;
  doc["config"] = config_json(cfg, plan, launch);
  doc["machine"] = {{"fma_peak_gflops_per_core", launch.peak_gflops},
                    {"fma_peak_isa", launch.peak_isa},
                    {"bf16_peak_gflops_per_core", launch.bf16_peak_gflops},
                    {"native_bf16", launch.bf16_peak_gflops > 0},
                    {"amx_bf16", launch.amx_bf16},
                    {"bf16_gemm", launch.bf16_gemm},
                    {"ranks_on_node", launch.ranks_on_node},
                    {"cores_on_node", launch.cores_on_node},
                    {"oversubscribed", launch.oversubscribed}};

  const SchemeChecks& lead_checks = m.verification.schemes.front();
  doc["verification"] = verification_json(lead_checks.output);
  doc["verification"]["passed"] = m.verification.passed;
  doc["verification"]["scheme"] = scheme_name(lead_checks.scheme);

  const CommunicationMetrics& c = m.communication;
  doc["communication"] = {{"scheme", scheme_name(c.lead)},
                          {"allreduce_calls_per_forward", c.lead_allreduce_calls},
                          {"collective_calls_per_forward", c.lead_calls},
                          {"bytes_per_allreduce", c.bytes_per_call},
                          {"elements_per_allreduce", c.elements_per_call},
                          {"ring_bytes_per_rank", c.ring_per_rank},
                          {"ring_bytes_total", c.ring_total}};

  const BenchmarkMetrics& b = m.benchmark;
  doc["benchmark"] = {{"scheme", scheme_name(b.lead)},
                      {"peak_gflops_per_core", b.peak_gflops},
                      {"peak", b.peak_is_bf16 ? "bf16" : "fp32"},
                      {"forward_ms", summary_json(b.lead_forward)},
                      {"gflops", b.lead_gflops},
                      {"gflops_per_rank", b.lead_gflops_per_rank}};
  if (cfg.invariant && cfg.block == BlockKind::attention) {
    doc["invariant"] = {{"unit", "head"}};
  } else if (cfg.invariant) {
    const InvariantBlocking blocking = InvariantBlocking::of(cfg);
    doc["invariant"] = {{"unit", cfg.block == BlockKind::layer ? "layer" : "ffn_block"},
                        {"block_width", blocking.block_width},
                        {"blocks", blocking.blocks},
                        {"row_tile", blocking.row_tile},
                        {"padded_tokens", blocking.padded_tokens}};
  }
  if (b.overlap) {
    json candidates = json::array();
    for (int i = 0; i < b.overlap->candidates; ++i)
      candidates.push_back(
          {{"chunks", b.overlap->candidate_chunks[i]}, {"forward_ms", b.overlap->candidate_ms[i]}});
    doc["overlap"] = {{"chunks", b.overlap->chunks},
                      {"chosen_automatically", b.overlap->automatic},
                      {"comm_share_of_megatron_forward", b.overlap->comm_share},
                      {"worth_hiding", b.overlap->worth_hiding},
                      {"candidates", candidates}};
  }
  if (b.megatron_floor)
    doc["floor"] = {{"bytes", b.megatron_floor->bytes},
                    {"allreduce_ms", summary_json(b.megatron_floor->all_reduce)}};

  const ScalingMetrics& s = m.scaling;
  doc["memory"] = {{"params_total", s.run.params.total},
                   {"params_per_rank", s.run.params.per_rank},
                   {"weight_bytes_per_rank", s.lead_weight_bytes},
                   {"weight_bytes_per_rank_formula", s.run.bytes_per_rank},
                   {"baseline_rss_bytes", s.memory.baseline_rss},
                   {"peak_rss_bytes", s.memory.peak_rss},
                   {"estimated_bytes", s.memory.estimate}};

  doc["memory"]["ffn_hidden_size_rules"] = {{"llama", s.llama_ffn_hidden_size},
                                            {"megatron", s.megatron_ffn_hidden_size}};
  doc["shards"]["ffn_columns"] = share_json(s.shares.ffn_columns);
  if (s.shares.hidden_rows) doc["shards"]["naive_hidden_rows"] = share_json(*s.shares.hidden_rows);
  if (s.shares.tokens) doc["shards"]["sequence_parallel_tokens"] = share_json(*s.shares.tokens);
  if (s.shares.query_heads) doc["shards"]["query_heads"] = share_json(*s.shares.query_heads);
  if (s.attention) doc["attention"] = attention_json(*s.attention, c.attention);
  for (const LayerScale& l : s.layer)
    doc["layer_scaling"].push_back(
        {{"tp_size", l.tp_size},
         {"params_per_rank", l.params_per_rank},
         {"weight_bytes_per_rank", l.params_per_rank * double(dtype_bytes(s.dtype))},
         {"kv_heads_held", l.kv_heads_held},
         {"replica_params", l.replica_params},
         {"activation_bytes_per_rank", l.activations_per_rank * double(dtype_bytes(s.dtype))}});

  add_schemes(doc["schemes"], m);
  // Shortcuts kept from the first schema: megatron's backward, and megatron-sp whole.
  const json& schemes = doc["schemes"];
  if (schemes.contains("megatron") && schemes["megatron"].contains("backward"))
    doc["backward"] = schemes["megatron"]["backward"];
  if (schemes.contains("megatron-sp")) doc["sequence_parallel"] = schemes["megatron-sp"];
  return doc;
}

void write_json(const std::string& path, const nlohmann::json& doc) {
  const std::string text = doc.dump(2) + "\n";
  OutputFile file(path);
  file.write(text.data(), text.size());
  file.commit();
}

}  // namespace tp_mlp
