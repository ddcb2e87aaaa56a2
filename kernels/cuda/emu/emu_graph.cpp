/* emu_graph.cpp — CUDA graphs by stream capture in the emulator: while a stream captures, its kernel launches,
 * asynchronous copies and sets and cuBLAS calls become nodes of a graph instead of running; cudaGraphLaunch runs
 * an instantiated graph's nodes in order. The capture rules of CUDA are enforced, so code that would fail to
 * capture on a GPU fails here too: a copy from pageable host memory, a synchronisation of the capturing stream,
 * and (global mode) allocation, freeing or synchronous copies anywhere invalidate the capture, and
 * cudaStreamEndCapture then returns cudaErrorStreamCaptureInvalidated. */
#include "emu_internal.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

struct CUgraph_st {
    std::vector<std::pair<std::string, cuda_emu_node>> nodes;
};
struct CUgraphExec_st {
    std::vector<std::pair<std::string, cuda_emu_node>> nodes;
};

namespace {

struct Capture {
    cudaStreamCaptureMode mode;
    bool invalid;
    std::string why;
    std::vector<std::pair<std::string, cuda_emu_node>> nodes;
};
std::map<cudaStream_t, Capture> g_caps;
unsigned long long g_graph_launches;

} // namespace

int cuda_emu_stream_capturing(cudaStream_t s) { return g_caps.count(s) != 0; }

void cuda_emu_capture_node(cudaStream_t s, const char *what, cuda_emu_node fn) {
    auto it = g_caps.find(s);
    if (it == g_caps.end()) return;
    if (!it->second.invalid) it->second.nodes.emplace_back(what, std::move(fn));
}

void emu_capture_invalidate(cudaStream_t s, const char *why) {
    auto it = g_caps.find(s);
    if (it == g_caps.end() || it->second.invalid) return;
    it->second.invalid = true;
    it->second.why = why;
    emu_warning("stream capture invalidated: %s", why);
}

int emu_capture_prohibits(const char *what) {
    int hit = 0;
    for (auto &kv : g_caps)
        if (kv.second.mode != cudaStreamCaptureModeRelaxed) {
            char why[256];
            snprintf(why, sizeof why, "%s while a stream captures (not permitted in global capture mode)", what);
            emu_capture_invalidate(kv.first, why);
            hit = 1;
        }
    return hit;
}

unsigned long long emu_graph_launches(void) { return g_graph_launches; }

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode) {
    if (emu_sticky()) return emu_sticky();
    if (!s || s == cudaStreamLegacy || s == cudaStreamPerThread || cudaStreamQuery(s) != cudaSuccess) {
        emu_violation(cudaSuccess, "cudaStreamBeginCapture on the legacy default or an invalid stream");
        return emu_error(cudaErrorStreamCaptureUnsupported);
    }
    if (g_caps.count(s)) return emu_error(cudaErrorIllegalState);
    Capture c;
    c.mode = mode;
    c.invalid = false;
    g_caps[s] = std::move(c);
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph) {
    auto it = g_caps.find(s);
    if (!graph || it == g_caps.end()) return emu_error(cudaErrorIllegalState);
    *graph = NULL;
    Capture c = std::move(it->second);
    g_caps.erase(it);
    if (c.invalid) return emu_error(cudaErrorStreamCaptureInvalidated);
    *graph = new CUgraph_st{std::move(c.nodes)};
    return emu_sticky();
}

cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *status) {
    auto it = g_caps.find(s);
    *status = it == g_caps.end() ? cudaStreamCaptureStatusNone : it->second.invalid ? cudaStreamCaptureStatusInvalidated
                                                                                     : cudaStreamCaptureStatusActive;
    return emu_sticky();
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long) {
    if (!exec || !graph) return emu_error(cudaErrorInvalidValue);
    *exec = new CUgraphExec_st{graph->nodes};
    return emu_sticky();
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
    if (emu_sticky()) return emu_sticky();
    if (!exec || cudaStreamQuery(s) != cudaSuccess) return emu_error(cudaErrorInvalidResourceHandle);
    if (cuda_emu_stream_capturing(s)) {
        emu_violation(cudaSuccess, "cudaGraphLaunch into a capturing stream (child graphs are not emulated)");
        return emu_error(cudaErrorNotSupported);
    }
    g_graph_launches++;
    for (auto &n : exec->nodes) {
        n.second(s);
        if (emu_sticky()) return emu_sticky();
    }
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    delete exec;
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    delete graph;
    return cudaSuccess;
}

size_t cuda_emu_graph_nodes(cudaGraphExec_t exec) { return exec ? exec->nodes.size() : 0; }
