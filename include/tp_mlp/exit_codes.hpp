// exit_codes: what the program's exit status means, so that a script can tell a wrong answer
// from a refused configuration, a failed rank or a hang. mpirun passes a rank's exit status or
// its MPI_Abort code through; its own failures and signals give it other codes (README). The
// one way a single rank ends the whole job with one of them is comm's end_job().
#pragma once

namespace tp_mlp {

inline constexpr int kExitSuccess = 0;
inline constexpr int kExitBadInput = 2;            // refused before running: one message says why
inline constexpr int kExitMpiError = 3;            // an MPI call failed: MPI's message names it
inline constexpr int kExitVerificationFailed = 4;  // ran, and a result is not the model's
inline constexpr int kExitRankFailed = 5;          // one rank failed alone (out of memory, ...)
inline constexpr int kExitTimeout = 6;             // a rank stopped responding (--timeout)
// CLI11's own command-line errors keep its codes, 100 and up (106: an unknown flag, ...).

}  // namespace tp_mlp
