# Makefile — the only build entry.
#   make             libsd.a and the `sd` CLI (CPU backend; + CUDA backend when nvcc is found)
#   make test        every test; ends with one line "N passed, M failed"
#   make asan-test   the tests under -fsanitize=address,undefined
#   make fuzz        each libFuzzer harness of tests/fuzz/ for FUZZ_SECONDS (60); make fuzz-replay: the corpora under ASan+UBSan
#   make cuda-check  every .cu compiled by nvcc for sm_80, sm_86, sm_89, sm_90
#   make deps        installs the Debian packages the build needs (as root)
#   make demo        renders samples/out/*.png with the bundled demo model (samples/prompts.tsv)
#   make samples     re-renders the committed sample pictures: samples/images/, batch contact sheet, compare grid
#   make bench       CPU benchmark tables (random-weight full-size SD 1.5 and SDXL, TAESD; BENCH_MODELS=sd15 for SD 1.5 only)
#   make bench-cuda  CUDA timings per step and per op (SD 1.5 512², SDXL 1024²) on a GPU; says so and exits 0 without one
#   make cuda-report registers/spills/occupancy/SASS mix of every kernel (sm_80, sm_90) + the roofline model per step
#   make hires-memory  peak RSS of hires-fix second passes at 1024² (SD 1.5) and 2048² (SDXL), random weights
#   make hires-demo  the README's hires-fix pictures (samples/hires/) with the demo model
#   make batch-demo  renders samples/jobs/shapes.jsonl into samples/out/batch/, contact sheet samples/batch/contact.png
#   make compare-demo  sampler x steps grid, table and chart in samples/compare/ with the demo model

# CROSS=aarch64-linux-gnu- cross-compiles (Debian's cross gcc and the arm64 packages through multiarch; no CUDA):
#   make CROSS=aarch64-linux-gnu- BUILD=build-arm64 build-arm64/tests/unit   (run it with qemu-aarch64; see .ci/run)
CROSS     ?=
CC        := $(CROSS)gcc
CXX       := $(CROSS)g++
OPT       ?= -O2
SAN       ?=
BUILD     ?= build
WARN      := -Wall -Wextra -Werror -Wno-format-truncation
# gcc 12.2 for AArch64 crashes (an internal compiler error) vectorising a loop in tests/test_clip_encoder.c
ARCH_CFLAGS := $(if $(findstring aarch64,$(shell $(CC) -dumpmachine)),-fno-tree-loop-vectorize)
CFLAGS    := -std=c11 $(OPT) -g $(WARN) $(ARCH_CFLAGS) -fopenmp -I. -D_GNU_SOURCE -DSD_SOURCE_DIR=\"$(CURDIR)\" -MMD -MP $(SAN)
CXXFLAGS  := -std=c++17 $(OPT) -g $(WARN) -fopenmp -I. -D_GNU_SOURCE -MMD -MP $(SAN)
LIBS      := -lpng -ljpeg -lwebp -lz -lcjson -lopenblas -lm -lpthread
LDLIBS    := $(LIBS) -fopenmp $(SAN)

NVCC      := $(if $(CROSS),,$(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null))
CUDA_ARCHS := 80 86 89 90

LIB_DIRS  := core kernels kernels/cpu text_encoder unet vae scheduler pipeline
LIB_SRC   := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_SRC   := $(wildcard cli/*.c)
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/%.o)
SERVER_SRC := $(wildcard cli/serve/*.c)
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/%.o)
TEST_SRC  := $(wildcard tests/*.c)
TEST_OBJ  := $(TEST_SRC:%.c=$(BUILD)/%.o)
CU_SRC    := $(wildcard kernels/cuda/*.cu)

.PHONY: all test asan-test cuda-check deps clean demo samples bench batch-demo compare-demo bench-cuda cuda-report hires-memory hires-demo
all: $(BUILD)/libsd.a sd

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# The tokenizer's merges are embedded with .incbin; -MMD cannot see that file.
$(BUILD)/text_encoder/merges_blob.o: text_encoder/bpe_simple_vocab_16e6.txt.gz

$(BUILD)/libsd.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/sd: $(CLI_OBJ) $(SERVER_OBJ) $(BUILD)/libsd.a
	$(CC) -o $@ $^ $(LDLIBS) -lmicrohttpd

# `sd serve` (cli/serve/): its web page and OpenAPI document are embedded with .incbin, which -MMD cannot see
$(BUILD)/cli/serve/assets.o: $(wildcard cli/serve/web/*)

sd: $(BUILD)/sd
	@cp $< $@

# the unit tests link the CLI's helpers (job files, manifest, grids ...) too: everything in cli/ but main()
CLI_LIB_OBJ := $(filter-out $(BUILD)/cli/main.o $(BUILD)/cli/cmd_serve.o,$(CLI_OBJ))
$(BUILD)/tests/unit: $(TEST_OBJ) $(CLI_LIB_OBJ) $(BUILD)/libsd.a
	$(CC) -o $@ $^ $(LDLIBS)

# Each run is label:MIN=command; MIN is how many test cases it must at least run (tests/run.sh): raise it when you
# add tests, so that a test that is renamed away or deleted fails the run instead of dropping out silently.
TEST_BINS := unit:264=$(BUILD)/tests/unit cli:219="tests/cli_test.sh $(BUILD)/sd" hostile:29="tests/hostile_test.sh $(BUILD)/sd" \
             batch:81="YAML_PATHS=$(BUILD)/tests/yaml_paths tests/batch_test.sh $(BUILD)/sd build/cache/tiny-sd"
# A real single-node Slurm (tests/slurm_test.sh): it must run its cases where Slurm is installed (tools/install_deps.sh);
# without the binaries it prints SKIP and why, and runs none.
SLURM_MIN := $(if $(shell PATH=$$PATH:/usr/sbin command -v slurmctld),10,0)
TEST_BINS += slurm:$(SLURM_MIN)="tests/slurm_test.sh $(BUILD)/sd"

# libyaml's parser, for the test of the Kubernetes manifest in samples/cluster/ (no Python in make test)
$(BUILD)/tests/yaml_paths: tests/yaml/yaml_paths.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(OPT) -g $(WARN) $(SAN) $< -o $@ -lyaml

test: $(BUILD)/tests/unit sd $(BUILD)/tests/yaml_paths
	@tests/run.sh $(TEST_BINS)

# The server's tests: its pieces in C (tests/server/test_*.c), then tests/server/run.sh drives `sd serve` through
# HTTP: the standard library's client, then the webuiapi and openai clients, Chromium and schemathesis from a venv it
# makes under build/ (a "SKIP: no network/PyPI" line when pip cannot reach the registry).
SERVER_TEST_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/server/*.c))
$(BUILD)/tests/server_unit: $(SERVER_TEST_OBJ) $(BUILD)/tests/test_main.o $(SERVER_OBJ) $(BUILD)/libsd.a
	$(CC) -o $@ $^ $(LDLIBS) -lmicrohttpd
# server-clients' minimum is 0 only so that an honest "SKIP: no network/PyPI" passes; run.sh holds each of its scripts
# to its own minimum when the clients are installed.
TEST_BINS += server-unit:6=$(BUILD)/tests/server_unit 'server-http:20=tests/server/run.sh http $(BUILD)/sd' \
             'server-clients:0=tests/server/run.sh clients $(BUILD)/sd'
test: $(BUILD)/tests/server_unit
-include $(SERVER_TEST_OBJ:.o=.d)

# ==== CUDA emulation (issue 8) ===========================================================================
# The same .cu sources nvcc builds are compiled a second time by g++ in front of the emulator
# (kernels/cuda/emu/cuda_emu.h) and their kernels run on the CPU in `make test`:
#   $(CXX) $(EMU_CXXFLAGS) -x c++ -c file.cu -o file.emu.o   and link with $(EMU_LIB) $(LDLIBS)
# EMU_CXXFLAGS also compiles C++ test files that call the emulator's controls (cuda_emu_*).
EMU_DIR      := kernels/cuda/emu
EMU_INC      := -I. -I$(EMU_DIR) -I$(EMU_DIR)/include
EMU_CXXFLAGS := -std=c++17 $(OPT) -g $(WARN) -Wno-unknown-pragmas $(EMU_INC) -include cuda_emu.h -D_GNU_SOURCE \
                -fstack-clash-protection -MMD -MP $(SAN)
EMU_LIB      := $(BUILD)/libcudaemu.a
EMU_RT_OBJ   := $(patsubst %.cpp,$(BUILD)/%.o,$(wildcard $(EMU_DIR)/*.cpp))
EMU_TEST_OBJ := $(patsubst %.cu,$(BUILD)/%.emu.o,$(wildcard tests/emu/*.cu)) \
                $(patsubst %.cpp,$(BUILD)/%.o,$(wildcard tests/emu/*.cpp)) $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/emu/*.c))
CU_SRC       += $(wildcard tests/emu/*.cu)
EMU_BIN      := $(BUILD)/tests/cuda_emu

$(BUILD)/$(EMU_DIR)/%.o: $(EMU_DIR)/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 $(OPT) -g $(WARN) $(EMU_INC) -D_GNU_SOURCE -MMD -MP $(SAN) -c $< -o $@

$(EMU_LIB): $(EMU_RT_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.emu.o: %.cu
	@mkdir -p $(dir $@)
	$(CXX) $(EMU_CXXFLAGS) -x c++ -c $< -o $@

$(BUILD)/tests/emu/%.o: tests/emu/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(EMU_CXXFLAGS) -c $< -o $@

$(EMU_BIN): $(EMU_TEST_OBJ) $(BUILD)/tests/test_main.o $(EMU_LIB) $(BUILD)/libsd.a
	$(CXX) -o $@ $^ $(LDLIBS)

# The emulated tests run once per schedule; a bug counts as caught if any of them catches it.
TEST_BINS += 'emu-inorder:56=CUDA_EMU_SCHED=inorder $(EMU_BIN)' 'emu-reverse:56=CUDA_EMU_SCHED=reverse $(EMU_BIN)' \
             'emu-rand1:56=CUDA_EMU_SCHED=random CUDA_EMU_SEED=1 $(EMU_BIN)' 'emu-rand2:56=CUDA_EMU_SCHED=random CUDA_EMU_SEED=2 $(EMU_BIN)'
test: $(EMU_BIN)

# CI: launches and dynamic shared memory only through kernels/cuda/cuda_portable.h, so both builds agree.
.PHONY: cuda-portable-check
cuda-check: cuda-portable-check
cuda-portable-check:
	@bad=$$(grep -rnE '<<<|extern[[:space:]]+__shared__' --include='*.cu' --include='*.cuh' --include='*.h' --include='*.cpp' \
	  kernels tests | grep -v '^kernels/cuda/cuda_portable.h:'); \
	if [ -n "$$bad" ]; then echo "$$bad"; echo "cuda-check: use CUDA_LAUNCH / CUDA_DYNAMIC_SHARED (kernels/cuda/cuda_portable.h)"; exit 1; fi

-include $(EMU_RT_OBJ:.o=.d) $(EMU_TEST_OBJ:.o=.d)
# ==== end of CUDA emulation ==============================================================================

# ==== CUDA backend (issue 9) =============================================================================
# kernels/cuda/*.cu implement the backend contract on the GPU. With nvcc (found above) they are compiled into
# libsd.a and `sd` links cudart (cuBLAS is loaded when a CUDA backend is made); without a GPU `sd` uses the CPU.
# Without nvcc, kernels/cuda/cuda_none.c stands in (be_cuda_available() = 0).
# The same .cu files are compiled for the emulator too: tests/cuda/ runs them against the CPU backend in
# `make test` (op tests under the four schedules, whole models under one). `make cuda-test-bin` links the
# same test code against the real backend (it builds anywhere nvcc is; it needs a GPU to run).
CUDA_HOME     ?= $(patsubst %/bin/nvcc,%,$(NVCC))
NVCC_ARCHS    ?= 80 90
NVCC_GENCODE  := $(foreach a,$(NVCC_ARCHS),-gencode arch=compute_$(a),code=sm_$(a)) \
                 -gencode arch=compute_$(lastword $(NVCC_ARCHS)),code=compute_$(lastword $(NVCC_ARCHS))
NVCC_FLAGS    := -std=c++17 -O3 -g -I. -Werror all-warnings -Xcompiler -Wall,-Wextra -MMD -MP -DSD_CUDA_LIBDIR=\"$(CUDA_HOME)/lib64\"
CUDA_BE_SRC   := $(wildcard kernels/cuda/*.cu)
ifneq ($(NVCC),)
CUDA_BE_OBJ   := $(CUDA_BE_SRC:%.cu=$(BUILD)/%.cu.o)
# cuBLAS is not linked: kernels/cuda/cublas_lazy.cu loads it when a CUDA backend is created
LDLIBS        += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -ldl -lstdc++
else
CUDA_BE_OBJ   := $(BUILD)/kernels/cuda/cuda_none.o
endif
$(BUILD)/libsd.a: $(CUDA_BE_OBJ)

$(BUILD)/kernels/cuda/%.cu.o: kernels/cuda/%.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) $(NVCC_GENCODE) -c $< -o $@

CUDA_TEST_OBJ   := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/cuda/test_*.c))
CUDA_EMU_BE_OBJ := $(CUDA_BE_SRC:%.cu=$(BUILD)/%.emu.o)
CUDA_EMU_BIN    := $(BUILD)/tests/cuda_backend_emu
CUDA_GPU_BIN    := $(BUILD)/tests/cuda_backend_gpu

$(BUILD)/tests/cuda/%.o: tests/cuda/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(EMU_CXXFLAGS) -c $< -o $@

# the library's C objects, not libsd.a: the emulated backend takes the place of the real one
$(CUDA_EMU_BIN): $(CUDA_TEST_OBJ) $(BUILD)/tests/cuda/hooks_emu.o $(CUDA_EMU_BE_OBJ) $(BUILD)/tests/test_main.o $(BUILD)/tests/random_ckpt.o \
                 $(LIB_OBJ) $(EMU_LIB)
	$(CXX) -o $@ $^ $(LDLIBS)

$(CUDA_GPU_BIN): $(CUDA_TEST_OBJ) $(BUILD)/tests/cuda/hooks_gpu.o $(BUILD)/tests/test_main.o $(BUILD)/tests/random_ckpt.o $(BUILD)/libsd.a
	$(CC) -o $@ $^ $(LDLIBS)

.PHONY: cuda-test-bin
cuda-test-bin:
ifeq ($(NVCC),)
	@echo "cuda-test-bin: nvcc not found"; exit 1
else
	@$(MAKE) --no-print-directory $(CUDA_GPU_BIN)
	@echo "cuda-test-bin: $(CUDA_GPU_BIN) (run it on a machine with a GPU)"
endif
cuda-check: cuda-test-bin

TEST_BINS += 'cuda-ops-inorder:25=CUDA_EMU_SCHED=inorder $(CUDA_EMU_BIN) cuda_op_' \
             'cuda-ops-reverse:25=CUDA_EMU_SCHED=reverse $(CUDA_EMU_BIN) cuda_op_' \
             'cuda-ops-rand1:25=CUDA_EMU_SCHED=random CUDA_EMU_SEED=1 $(CUDA_EMU_BIN) cuda_op_' \
             'cuda-ops-rand2:25=CUDA_EMU_SCHED=random CUDA_EMU_SEED=2 $(CUDA_EMU_BIN) cuda_op_' \
             'cuda-ops-greedy:25=CUDA_EMU_SCHED=greedy $(CUDA_EMU_BIN) cuda_op_' \
             'cuda-models:19=CUDA_EMU_SCHED=random CUDA_EMU_SEED=3 $(CUDA_EMU_BIN) cuda_model_'
test: $(CUDA_EMU_BIN)

-include $(CUDA_BE_OBJ:.o=.d) $(CUDA_EMU_BE_OBJ:.o=.d) $(CUDA_TEST_OBJ:.o=.d) $(BUILD)/tests/cuda/hooks_emu.d

# `make cuda-report` (CI): the kernels compiled for sm_80 and sm_90 with ptxas -v (registers, shared memory, spills)
# and disassembled with cuobjdump -sass (instruction mix: HMMA ...), tabulated by tools/cuda_report.py with the
# theoretical occupancy, then the per-step model of tools/cuda_roofline.py. The toolkit here has no cuobjdump: the
# target installs NVIDIA's cuobjdump and nvdisasm wheels from PyPI into a venv of its own. Fails if a kernel spills
# or a tensor-core kernel has no HMMA. The text is in kernels/cuda/README.md.
CUDA_REPORT_DIR   := $(BUILD)/cuda-report
CUDA_REPORT_VENV  := $(BUILD)/cuda-report-venv
CUDA_REPORT_TOOLS := nvidia-cuda-cuobjdump==13.2.51 nvidia-cuda-nvdisasm==13.2.51
CUDA_REPORT_SRC   := igemm flash norm eltwise attention conv gemv
.PHONY: cuda-report
cuda-report:
ifeq ($(NVCC),)
	@echo "cuda-report: nvcc not found"; exit 1
else
	@mkdir -p $(CUDA_REPORT_DIR)
	@test -x $(CUDA_REPORT_VENV)/bin/pip || python3 -m venv $(CUDA_REPORT_VENV)
	@$(CUDA_REPORT_VENV)/bin/pip install -q $(CUDA_REPORT_TOOLS)
	@bin=$$(dirname $$(find $(CUDA_REPORT_VENV) -name cuobjdump -type f | head -n 1)); \
	for a in 80 90; do for f in $(CUDA_REPORT_SRC); do \
	  $(NVCC) -std=c++17 -O3 -I. -gencode arch=compute_$$a,code=sm_$$a -Xptxas -v -c kernels/cuda/$$f.cu \
	    -o $(CUDA_REPORT_DIR)/$$f.sm_$$a.o 2> $(CUDA_REPORT_DIR)/$$f.sm_$$a.ptxas.txt || { cat $(CUDA_REPORT_DIR)/$$f.sm_$$a.ptxas.txt; exit 1; }; \
	  PATH=$$bin:$$PATH cuobjdump -sass $(CUDA_REPORT_DIR)/$$f.sm_$$a.o > $(CUDA_REPORT_DIR)/$$f.sm_$$a.sass.txt || exit 1; \
	done; done
	@( python3 tools/cuda_report.py $(CUDA_REPORT_DIR); st=$$?; echo; python3 tools/cuda_roofline.py; echo; \
	   python3 tools/cuda_roofline.py --sdxl; echo; python3 tools/cuda_roofline.py --vae; exit $$st ) > $(CUDA_REPORT_DIR)/report.md; \
	  st=$$?; cat $(CUDA_REPORT_DIR)/report.md; echo "cuda-report: $(CUDA_REPORT_DIR)/report.md"; exit $$st
endif
# ==== end of CUDA backend ================================================================================

# LeakSanitizer (part of ASan on x86_64 Linux) is switched on explicitly; every report of every process the tests
# start (the CLI's too, whose stderr a shell test may discard) is written under SAN_LOG_DIR, and tests/run.sh
# fails a run that leaves one.
asan-test:
	ASAN_OPTIONS=detect_leaks=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 SAN_LOG_DIR=$(CURDIR)/build-asan/sanitizer-reports \
	$(MAKE) BUILD=build-asan OPT="-O1" SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" test

# ==== fuzzing (issue 17) =================================================================================
# tests/fuzz/fuzz_<name>.c: one libFuzzer harness per parser of untrusted input; tests/fuzz/corpus/<name>/ its
# committed, minimised corpus (seeds + inputs that found bugs).
#   make fuzz [FUZZ_SECONDS=60]  builds each harness with clang (libFuzzer + ASan + UBSan) in build-fuzz/ and fuzzes
#                                it for FUZZ_SECONDS on one core; new inputs go to build-fuzz/corpus/<name>/, crashes
#                                to build-fuzz/crashes/ (the corpus in git is read, never written)
#   make fuzz-replay             runs every committed corpus file once through each harness built by gcc with ASan +
#                                UBSan in build-replay/ (no clang needed): the regression test CI runs
FUZZ_NAMES    := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SECONDS  ?= 60
FUZZ_CC       ?= clang
FUZZ_BUILD    := build-fuzz
FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS   := -std=c11 -O1 -g -Wall -Wextra -Werror -fopenmp -I. -D_GNU_SOURCE -DSD_SOURCE_DIR=\"$(CURDIR)\" -MMD -MP $(FUZZ_SAN) -fsanitize=fuzzer-no-link
# the library (CPU backend only) and the CLI's job-file parsers; the config readers sit beside the weight loaders,
# which link the backends in. clang 14 knows no "f16c" for __builtin_cpu_supports: the fuzzers never run kernels.
FUZZ_LIB_SRC  := $(LIB_SRC) kernels/cuda/cuda_none.c cli/jobs.c cli/expand.c cli/clikit.c
FUZZ_LIB_OBJ  := $(FUZZ_LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)
FUZZ_LDLIBS   := $(LIBS) -fopenmp
FUZZ_OPTS     ?= -rss_limit_mb=2560 -timeout=25 -max_len=65536
.PHONY: fuzz fuzz-build fuzz-replay
.PRECIOUS: $(FUZZ_BUILD)/%.o $(BUILD)/tests/fuzz/%.o

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@
$(FUZZ_BUILD)/text_encoder/merges_blob.o: text_encoder/bpe_simple_vocab_16e6.txt.gz
$(FUZZ_BUILD)/kernels/cpu/cpu_simd.o: FUZZ_CFLAGS += '-D__builtin_cpu_supports(feature)=0'
# clang 14 ignores gcc's "#pragma GCC target" of the x86 kernel levels (an error under -Werror): the same target as
# flags. Never run here (the level is always the portable one above), only compiled so that the archive is whole.
$(FUZZ_BUILD)/kernels/cpu/cpu_kern_avx2.o: FUZZ_CFLAGS += -Wno-unknown-pragmas -mavx2 -mfma -mf16c
$(FUZZ_BUILD)/kernels/cpu/cpu_kern_avx512.o: FUZZ_CFLAGS += -Wno-unknown-pragmas -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma -mf16c

$(FUZZ_BUILD)/libsd-fuzz.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz-%: $(FUZZ_BUILD)/tests/fuzz/fuzz_%.o $(FUZZ_BUILD)/libsd-fuzz.a
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(FUZZ_LDLIBS)

# the server's request bodies: its code (cli/serve/, which links libmicrohttpd) beside the library
FUZZ_SERVER_OBJ := $(SERVER_SRC:%.c=$(FUZZ_BUILD)/%.o)
$(FUZZ_BUILD)/cli/serve/assets.o: $(wildcard cli/serve/web/*)
$(FUZZ_BUILD)/fuzz-server_request: $(FUZZ_BUILD)/tests/fuzz/fuzz_server_request.o $(FUZZ_SERVER_OBJ) $(FUZZ_BUILD)/libsd-fuzz.a
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(FUZZ_LDLIBS) -lmicrohttpd

fuzz-build: $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz-%)

fuzz: fuzz-build
	@mkdir -p $(FUZZ_BUILD)/crashes
	@for n in $(FUZZ_NAMES); do mkdir -p $(FUZZ_BUILD)/corpus/$$n; echo "fuzz: $$n for $(FUZZ_SECONDS) s"; \
	  nice -n 10 $(FUZZ_BUILD)/fuzz-$$n $(FUZZ_OPTS) -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/crashes/$$n- $(FUZZ_BUILD)/corpus/$$n tests/fuzz/corpus/$$n \
	    2>$(FUZZ_BUILD)/$$n.log || { tail -n 60 $(FUZZ_BUILD)/$$n.log; echo "fuzz: $$n FAILED (input in $(FUZZ_BUILD)/crashes/)"; exit 1; }; \
	  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)" $(FUZZ_BUILD)/$$n.log | tr '\n' ' '; echo; done

# replay: the same harness sources against a gcc sanitizer build of the library without CUDA (build-replay), with
# float-cast-overflow, which gcc's "undefined" leaves out: a number from a file converted to int or float out of range
REPLAY_SAN := -fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer -fno-sanitize-recover=all
$(BUILD)/fuzz/replay-%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay.o $(BUILD)/cli/jobs.o $(BUILD)/cli/expand.o $(BUILD)/cli/clikit.o $(BUILD)/libsd.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDLIBS)

$(BUILD)/fuzz/replay-server_request: $(BUILD)/tests/fuzz/fuzz_server_request.o $(BUILD)/tests/fuzz/replay.o $(SERVER_OBJ) $(BUILD)/libsd.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDLIBS) -lmicrohttpd

fuzz-replay:
	@$(MAKE) --no-print-directory NVCC= BUILD=build-replay OPT="-O1" SAN="$(REPLAY_SAN)" fuzz-replay-run
.PHONY: fuzz-replay-run
fuzz-replay-run: $(FUZZ_NAMES:%=$(BUILD)/fuzz/replay-%)
	@for n in $(FUZZ_NAMES); do printf "%-18s " $$n; $(BUILD)/fuzz/replay-$$n tests/fuzz/corpus/$$n || exit 1; done

-include $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_SERVER_OBJ:.o=.d) $(FUZZ_NAMES:%=$(FUZZ_BUILD)/tests/fuzz/fuzz_%.d)
# ==== end of fuzzing =====================================================================================

cuda-check:
ifeq ($(NVCC),)
	@echo "cuda-check: nvcc not found"; exit 1
else ifeq ($(CU_SRC),)
	@echo "cuda-check: no .cu files yet ($(NVCC) found)"
else
	@for f in $(CU_SRC); do echo "nvcc $$f"; \
	  $(NVCC) -std=c++17 -I. $(foreach a,$(CUDA_ARCHS),-gencode arch=compute_$(a),code=sm_$(a)) \
	    -Werror all-warnings -Xcompiler -Wall,-Wextra -c $$f -o /dev/null || exit 1; done
	@echo "cuda-check: $(words $(CU_SRC)) files compiled for sm_$(subst $() ,/sm_,$(CUDA_ARCHS))"
endif

# ==== AArch64 (CI) ========================================================================================
# The cross build (CROSS above) and a subset of its tests under qemu-user: the neon level against the generic one
# and the math (Winograd transforms included; test_cpu_winograd's double reference takes too long under qemu), the
# CPU ops against references, zero-copy weights, the UNet and VAE goldens and one
# pipeline golden. Each filter is its own run with its minimum case count.
ARM64_BUILD := build-arm64
# glibc from one build: -L makes the cross toolchain's ld.so the interpreter (libc6-arm64-cross), but its search
# finds libc.so.6 and libm.so.6 of the multiarch libc6:arm64 in /lib/aarch64-linux-gnu first (the ld.so.cache), and
# the two packages need not be the same revision (here 2.36-8cross1 and 2.36-9+deb12u14). A loader and a libc of
# different builds disagree on the loader's private data (_rtld_global): the first pthread_create (an OpenMP team,
# OpenBLAS's thread pool) walked its stack cache list forever, so any test that started a thread hung with no
# syscall. LD_LIBRARY_PATH takes libc, libm, libgomp and libgcc_s from the cross toolchain, next to its ld.so; the
# other libraries still come from multiarch. Each run is bounded (the whole subset takes under a minute here), so a
# hang under emulation fails the CI run instead of stalling it: status 124, no tally.
ARM64_RUN   := timeout 600 qemu-aarch64 -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib $(ARM64_BUILD)/tests/unit
ARM64_TESTS := $(foreach t,cpu_levels_against cpu_simd_math cpu_attention_key_blocks cpu_zero_copy cpu_linear_with \
                 cpu_conv2d_shapes cpu_group_norm_and cpu_layer_norm cpu_elementwise cpu_upsample cpu_attention_heads cpu_timestep \
                 cpu_winograd_against pipeline_matches_diffusers,'arm64-$(t):1=$(ARM64_RUN) $(t)') 'arm64-unet:3=$(ARM64_RUN) unet_golden' \
               'arm64-vae:3=$(ARM64_RUN) vae_golden'
.PHONY: arm64-test
arm64-test:
	@$(MAKE) --no-print-directory CROSS=aarch64-linux-gnu- BUILD=$(ARM64_BUILD) $(ARM64_BUILD)/tests/unit
	@tests/run.sh $(ARM64_TESTS)

$(BUILD)/sd-bench: $(BUILD)/tests/bench/bench.o $(BUILD)/tests/bench/peak.o $(BUILD)/tests/random_ckpt.o $(BUILD)/libsd.a
	$(CC) -o $@ $^ $(LDLIBS)

# SD 1.5 then SDXL, each its own process (so each peak RSS is its own); BENCH_MODELS=sd15 skips SDXL.
BENCH_MODELS ?= sd15 sdxl
bench: $(BUILD)/sd-bench
	@for m in $(BENCH_MODELS); do $(BUILD)/sd-bench $$m $(BENCH_RUNS) || exit 1; echo; done

# `make bench-cuda`: the CUDA backend's timings on random-weight full-size SD 1.5 and SDXL (tests/bench/bench_cuda.c),
# then the whole CUDA test binary against the real device. Without a GPU it says so and exits 0.
$(BUILD)/sd-bench-cuda: $(BUILD)/tests/bench/bench_cuda.o $(BUILD)/tests/random_ckpt.o $(BUILD)/libsd.a
	$(CC) -o $@ $^ $(LDLIBS)

.PHONY: bench-cuda
bench-cuda: $(BUILD)/sd-bench-cuda
	@$(BUILD)/sd-bench-cuda $(BENCH_STEPS)
ifneq ($(NVCC),)
	@if $(BUILD)/sd-bench-cuda --probe >/dev/null 2>&1; then $(MAKE) --no-print-directory $(CUDA_GPU_BIN) && \
	  echo "bench-cuda: the CUDA test binary on the device:" && $(CUDA_GPU_BIN); fi
endif


# Peak RSS of the hires fix's large second passes on random-weight full-size models (one step each pass, the CPU
# backend): SD 1.5 512² -> 1024², SDXL 1024² -> 2048². Slow (tens of minutes); the models are make bench's, cached
# under build/cache/ (tests/random_ckpt.c; ~2 GB and ~7 GB).
$(BUILD)/sd-random-model: $(BUILD)/tests/bench/random_model.o $(BUILD)/tests/random_ckpt.o $(BUILD)/libsd.a
	$(CC) -o $@ $^ $(LDLIBS)

HIRES_DEMO := -p "a large red star on a blue background, centre" -s 3
hires-demo: sd
	@mkdir -p samples/hires
	./sd $(HIRES_DEMO) -o samples/hires/base.png --overwrite
	./sd $(HIRES_DEMO) --hires-scale 2 --hires-denoise 0.45 -o samples/hires/hires.png --overwrite

HIRES_PROMPT := "a photo of an astronaut riding a horse on mars"
hires-memory: sd $(BUILD)/sd-random-model
	m=$$($(BUILD)/sd-random-model sd15) && ./sd -m $$m -p $(HIRES_PROMPT) -W 512 -H 512 --steps 1 --hires-scale 2 --hires-steps 1 \
	    -o $(BUILD)/cache/hires-sd15.png --overwrite -v
	m=$$($(BUILD)/sd-random-model sdxl) && ./sd -m $$m -p $(HIRES_PROMPT) -W 1024 -H 1024 --steps 1 --hires-scale 2 --hires-steps 1 \
	    -o $(BUILD)/cache/hires-sdxl.png --overwrite -v

deps:
	@tools/install_deps.sh

clean:
	rm -rf build build-asan build-fuzz build-replay sd

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(SERVER_OBJ:.o=.d)

DEMO_MODEL := samples/models/shapes

# Renders every line of samples/prompts.tsv (seed, name, prompt) with the demo model into $(1)/<name>.png.
render_prompts = @mkdir -p $(1) && grep -v '^\#' samples/prompts.tsv | while IFS='	' read -r seed name prompt; do \
	    ./sd -m $(DEMO_MODEL) -p "$$prompt" -s $$seed -o $(1)/$$name.png --overwrite || exit 1; done

demo: sd
	$(call render_prompts,samples/out)

samples: sd
	$(call render_prompts,samples/images)
	rm -rf samples/out/batch
	$(MAKE) batch-demo compare-demo

batch-demo: sd
	./sd batch samples/jobs/shapes.jsonl -m $(DEMO_MODEL) -o samples/out/batch --contact-sheet samples/batch/contact.png --overwrite

compare-demo: sd
	./sd compare -m $(DEMO_MODEL) -p "a large red star on a blue background, centre" -s 42 \
	    --samplers euler,euler_a,dpm++2m,ddim --steps 4,8,16,32 --reference dpm++2m:100 -o samples/compare/grid.png --overwrite
