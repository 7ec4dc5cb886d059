// spikehq network harness: a C++ Verilator main that streams digits samples through the
// whole-network core with the per-cycle loop in C++ (sim/network_harness.py builds and runs it).
//
// The model is `harness_top`, a wrapper (written by sim/network_harness.py) around the
// network core with plain port names:
//   clk, rst; in_valid, in_ready, in_data   (= i_events valid/ready/payload)
//             out_valid, out_ready, out_data (= o_result valid/ready/payload)
//             trace_data                     (= o_trace)
//
// Events file (text, written from the golden side):
//   spikehq-harness-events 1
//   <number of samples>
//   <sample id> <n> <w_1> ... <w_n>          one line per sample, in sending order
// where w_i are the packed i_events payloads in hex (every event of step 0, its end token,
// ..., every event of step T-1, its end token).
//
// Results file (text, one line per result, in result order = sending order):
//   spikehq-harness-results 1
//   <sample id> <first_in> <last_in> <result_cycle> <o_result hex> <o_trace hex>
// first_in / last_in: cycles the sample's first / last event was accepted; result_cycle:
// cycle its result was accepted (cycle 0 = first cycle after reset). o_trace is sampled in
// the cycle the result is accepted: it describes that sample only when no later sample has
// been sent yet, i.e. with --max-in-flight 1 (the caller compares traces only then).
//
// Options: --events F --results F [--seed N] [--stall P] [--max-in-flight N (0 = no limit)]
//          [--timeout CYCLES (without a handshake: deadlock)] [--progress N]
//          [--waves F.fst (only in a build with -DSPIKEHQ_WAVES and --trace-fst; 10 time units per cycle)]
// stdout: "seed N", "progress <results>" every N results, then
//         "done cycles <C> wall_s <S> cycles_per_s <R>". Exit status: 0 ok, 2 usage or file
//         error, 3 deadlock (no handshake for --timeout cycles), 4 unexpected result.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "Vharness_top.h"
#include "verilated.h"
#ifdef SPIKEHQ_WAVES
#include "verilated_fst_c.h"
#endif

namespace {

using Words = std::vector<uint32_t>;  // little-endian 32-bit words of a bit vector

Words parse_hex(const std::string& text) {
    Words out;
    size_t end = text.size();
    while (end > 0) {
        size_t begin = end >= 8 ? end - 8 : 0;
        out.push_back(static_cast<uint32_t>(std::stoul(text.substr(begin, end - begin), nullptr, 16)));
        end = begin;
    }
    return out;
}

// Verilator ports: CData/SData/IData/QData for <= 64 bits, VlWide<N> above.
template <typename T>
void set_bits(T& port, const Words& w) {
    static_assert(std::is_integral<T>::value, "narrow port");
    uint64_t v = w.empty() ? 0 : w[0];
    if (w.size() > 1) v |= static_cast<uint64_t>(w[1]) << 32;
    port = static_cast<T>(v);
}
template <std::size_t N>
void set_bits(VlWide<N>& port, const Words& w) {
    for (std::size_t i = 0; i < N; ++i) port[i] = i < w.size() ? w[i] : 0;
}

template <typename T>
std::string hex(const T& port) {
    static_assert(std::is_integral<T>::value, "narrow port");
    char buf[24];
    std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(port));
    return buf;
}
template <std::size_t N>
std::string hex(const VlWide<N>& port) {
    std::string out;
    char buf[16];
    for (std::size_t i = N; i-- > 0;) {
        std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(port[i]));
        out += buf;
    }
    return out;
}

// splitmix64: small, seedable, the same on every platform
struct Rng {
    uint64_t state;
    explicit Rng(uint64_t seed) : state(seed) {}
    double next() {
        uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        return static_cast<double>(z >> 11) * (1.0 / 9007199254740992.0);
    }
};

struct Sample {
    std::string id;
    std::vector<Words> events;
};

int usage(const char* message) {
    std::fprintf(stderr, "error: %s\n", message);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    std::string events_path, results_path, waves_path;
    uint64_t seed = 1, timeout = 20000000, progress = 10;
    double stall = 0.0;
    long max_in_flight = 0;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (i + 1 >= argc) return usage(("option " + a + " needs a value").c_str());
        std::string v = argv[++i];
        if (a == "--events") events_path = v;
        else if (a == "--results") results_path = v;
        else if (a == "--seed") seed = std::stoull(v);
        else if (a == "--stall") stall = std::stod(v);
        else if (a == "--max-in-flight") max_in_flight = std::stol(v);
        else if (a == "--timeout") timeout = std::stoull(v);
        else if (a == "--progress") progress = std::stoull(v);
        else if (a == "--waves") waves_path = v;
        else return usage(("unknown option " + a).c_str());
    }
    if (events_path.empty() || results_path.empty()) return usage("--events and --results are required");
    if (stall < 0.0 || stall >= 1.0) return usage("--stall: expected 0 <= P < 1");
#ifndef SPIKEHQ_WAVES
    if (!waves_path.empty()) return usage("--waves: this harness was built without waves (SPIKEHQ_WAVES)");
#endif

    std::ifstream in(events_path);
    std::string magic;
    int version = 0;
    size_t count = 0;
    if (!(in >> magic >> version >> count) || magic != "spikehq-harness-events" || version != 1)
        return usage(("not a version-1 events file: " + events_path).c_str());
    std::vector<Sample> samples(count);
    for (auto& s : samples) {
        size_t n = 0;
        if (!(in >> s.id >> n)) return usage(("truncated events file: " + events_path).c_str());
        s.events.resize(n);
        std::string word;
        for (auto& e : s.events) {
            if (!(in >> word)) return usage(("truncated events file: " + events_path).c_str());
            e = parse_hex(word);
        }
    }
    std::FILE* out = std::fopen(results_path.c_str(), "w");
    if (!out) return usage(("cannot write " + results_path).c_str());
    std::fprintf(out, "spikehq-harness-results 1\n");

    std::printf("seed %llu stall %g max-in-flight %ld samples %zu\n", static_cast<unsigned long long>(seed), stall,
                max_in_flight, count);
    std::fflush(stdout);

    auto context = std::make_unique<VerilatedContext>();
#ifdef SPIKEHQ_WAVES
    context->traceEverOn(true);
#endif
    auto top = std::make_unique<Vharness_top>(context.get());
#ifdef SPIKEHQ_WAVES
    std::unique_ptr<VerilatedFstC> waves;
    if (!waves_path.empty()) {
        waves = std::make_unique<VerilatedFstC>();
        top->trace(waves.get(), 99);
        waves->open(waves_path.c_str());
    }
    auto dump = [&](uint64_t time) { if (waves) waves->dump(time); };
#else
    auto dump = [](uint64_t) {};
#endif
    Rng rng_in(seed), rng_out(seed + 1);

    top->in_valid = 0;
    top->out_ready = 0;
    top->rst = 1;
    for (int i = 0; i < 3; ++i) {
        top->clk = 0;
        top->eval();
        top->clk = 1;
        top->eval();
    }
    top->rst = 0;

    size_t send_sample = 0, send_event = 0, received = 0;
    std::vector<uint64_t> first_in(count), last_in(count);
    uint64_t cycle = 0, last_progress = 0;
    bool valid = false;
    int status = 0;
    auto wall_start = std::chrono::steady_clock::now();
    while (received < count) {
        // negative edge: drive this cycle's inputs, settle combinational outputs
        top->clk = 0;
        if (!valid && send_sample < count &&
            (max_in_flight <= 0 || static_cast<long>(send_sample - received) < max_in_flight ||
             send_event > 0) &&
            !(stall > 0.0 && rng_in.next() < stall)) {
            set_bits(top->in_data, samples[send_sample].events[send_event]);
            valid = true;
        }
        top->in_valid = valid;
        top->out_ready = !(stall > 0.0 && rng_out.next() < stall);
        top->eval();
        dump(10 * cycle + 5);
        bool fire_in = valid && top->in_ready;
        bool fire_out = top->out_valid && top->out_ready;
        if (fire_out) {
            if (received >= send_sample) {
                std::fprintf(stderr, "error: a result at cycle %llu with no sample outstanding\n",
                             static_cast<unsigned long long>(cycle));
                status = 4;
                break;
            }
            std::fprintf(out, "%s %llu %llu %llu %s %s\n", samples[received].id.c_str(),
                         static_cast<unsigned long long>(first_in[received]),
                         static_cast<unsigned long long>(last_in[received]),
                         static_cast<unsigned long long>(cycle), hex(top->out_data).c_str(),
                         hex(top->trace_data).c_str());
            ++received;
            if (progress && (received % progress == 0 || received == count)) {
                std::printf("progress %zu\n", received);
                std::fflush(stdout);
            }
        }
        // positive edge
        top->clk = 1;
        top->eval();
        dump(10 * cycle + 10);
        if (fire_in) {
            if (send_event == 0) first_in[send_sample] = cycle;
            valid = false;
            if (++send_event == samples[send_sample].events.size()) {
                last_in[send_sample] = cycle;
                send_event = 0;
                ++send_sample;
            }
        }
        if (fire_in || fire_out) last_progress = cycle;
        ++cycle;
        if (cycle - last_progress > timeout) {
            std::fprintf(stderr,
                         "error: deadlock: no handshake for %llu cycles at cycle %llu (%zu samples sent, %zu "
                         "results)\n",
                         static_cast<unsigned long long>(timeout), static_cast<unsigned long long>(cycle),
                         send_sample, received);
            status = 3;
            break;
        }
    }
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    std::fclose(out);
#ifdef SPIKEHQ_WAVES
    if (waves) waves->close();
#endif
    top->final();
    std::printf("done cycles %llu wall_s %.3f cycles_per_s %.0f\n", static_cast<unsigned long long>(cycle), wall,
                wall > 0 ? cycle / wall : 0.0);
    std::fflush(stdout);
    return status;
}
