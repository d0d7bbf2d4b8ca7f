# trunkline — one binary, one Makefile.
#   make               build build/trunkline with -Wall -Wextra -Werror
#   make SANITIZE=1    the same under ASan+UBSan, in build-asan/
#   make TSAN=1        the same under ThreadSanitizer, in build-tsan/ (make TSAN=1 tsan-test:
#                      the tests that exercise the threads)
#   make test          unit tests (cmocka), then integration and browser tests (pytest, real daemon;
#                      the SIP tests that need test answers run build/trunkline-test)
#   make browser       the web UI's tests in headless Chromium only
#   make unit          unit tests only
#   make test-pg       the store unit tests and the daemon on a throwaway PostgreSQL (part of
#                      make test)
#   make run           start the daemon with embedded defaults (data in ./var)
#   make fuzz          libFuzzer targets (clang-14) in build-fuzz/
#   make fuzz-smoke    a short run of every fuzz target over its seed corpus
#   make format        clang-format every C file in place
#   make install       copy the binary to $(PREFIX)/bin (default /usr/local)
# Quiet unless V=1.

PKGS     := libuv libmicrohttpd jansson sqlite3 libpq libsodium openssl libcurl libcares libsrtp2 espeak-ng
# wslay (WebSocket framing, agent/ws.c): Debian 12's libwslay-dev ships no libwslay.pc, so
# it is linked by name unless pkg-config knows it
ifeq ($(shell pkg-config --exists libwslay && echo y),y)
PKGS     += libwslay
else
LIBS_NOPC := -lwslay
endif
CC       ?= cc
PYTHON   ?= /usr/bin/python3
CFLAGS_W := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -D_GNU_SOURCE $(CFLAGS_W) -Isrc $(shell pkg-config --cflags $(PKGS))
LDLIBS   += $(shell pkg-config --libs $(PKGS)) $(LIBS_NOPC) -lanl -lpthread -lm

ifeq ($(SANITIZE),1)
BUILD    ?= build-asan
CFLAGS   := $(filter-out -O2,$(CFLAGS)) -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=address,undefined
else ifeq ($(TSAN),1)
# ThreadSanitizer: the loop, the API's MHD thread and the recorder share the store, the
# routing cache and the recorder's queue (docs/design.md "Threads")
BUILD    ?= build-tsan
CFLAGS   := $(filter-out -O2,$(CFLAGS)) -O1 -fno-omit-frame-pointer -fsanitize=thread
LDFLAGS  += -fsanitize=thread
else
BUILD    ?= build
endif

ifneq ($(V),1)
Q := @
endif

LIB_SRC  := $(sort $(shell find src -name '*.c' ! -name main.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
# The web UI (web/) is compiled into the binary: scripts/webembed.c, built and run first,
# turns the files into one C file of byte arrays. The file list is kept in a stamp that
# changes only when a file is added or removed, so that either regenerates the C file.
WEB_FILES := $(sort $(shell find web -type f ! -name '.*' 2>/dev/null))
WEB_GEN   := $(BUILD)/gen/web_assets.c
WEB_LIST  := $(BUILD)/gen/web_files.list
$(shell mkdir -p $(BUILD)/gen && (echo '$(WEB_FILES)' | cmp -s - $(WEB_LIST) || echo '$(WEB_FILES)' > $(WEB_LIST)))
LIB_OBJ  += $(BUILD)/gen/web_assets.o
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

all: $(BUILD)/trunkline

testbuild: $(BUILD)/trunkline-test

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC $<")
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/webembed: scripts/webembed.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=c11 -O1 -Wall -Wextra -Werror -o $@ $<

$(WEB_GEN): $(BUILD)/webembed $(WEB_FILES) $(WEB_LIST)
	@$(if $(Q),echo "  WEB $@")
	$(Q)$(BUILD)/webembed $@ web $(patsubst web/%,%,$(WEB_FILES))

$(BUILD)/gen/web_assets.o: $(WEB_GEN)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libtrunkline.a: $(LIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/trunkline: $(BUILD)/src/main.o $(BUILD)/libtrunkline.a
	@$(if $(Q),echo "  LD $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The test build (issue 11 item 18): build/trunkline-test is the daemon with the test-only
# answering policies (sip_test_policy, sip_test_auth) compiled in; the SIP integration tests
# run it, `make install` never ships it. Only the files that hold the hooks are compiled
# twice; the linker takes their test objects before the archive's.
TEST_HOOK_SRC := src/sip/session.c src/daemon/config.c src/daemon/serve.c
TEST_HOOK_OBJ := $(TEST_HOOK_SRC:%.c=$(BUILD)/testhooks/%.o)
$(BUILD)/testhooks/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC $< (test build)")
	$(Q)$(CC) $(CFLAGS) -DTL_TEST_HOOKS -MMD -MP -c $< -o $@

$(BUILD)/trunkline-test: $(BUILD)/src/main.o $(TEST_HOOK_OBJ) $(BUILD)/libtrunkline.a
	@$(if $(Q),echo "  LD $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/libtrunkline.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs cmocka)

# bench/calls load generator (not part of `all`): make loadgen
LOADGEN_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(sort $(wildcard bench/loadgen/*.c)))
loadgen: $(LOADGEN_OBJ) $(BUILD)/libtrunkline.a
	$(Q)$(CC) $(LDFLAGS) -o $(BUILD)/loadgen $^ $(LDLIBS)

# bench/agents codec micro-benchmark (not part of `all`): make bench-twilio
bench-twilio: $(BUILD)/bench/agents/twilio_codec.o $(BUILD)/libtrunkline.a
	$(Q)$(CC) $(LDFLAGS) -o $(BUILD)/bench-twilio $^ $(LDLIBS)

# bench/routing lookup latency under updates (not part of `all`): make bench-routing
bench-routing: $(BUILD)/bench/routing/routing.o $(BUILD)/libtrunkline.a
	$(Q)$(CC) $(LDFLAGS) -o $(BUILD)/bench-routing $^ $(LDLIBS)

# bench/cluster: the edge's, each node's and PostgreSQL's cost per call (not part of `test`;
# ≈5 min, needs kamailio and postgresql): make bench-cluster [BENCH_ARGS='--calls-per-s 20']
bench-cluster: all loadgen
	/usr/bin/python3 bench/cluster/run.py $(BENCH_ARGS)

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

# Issue 13: the store suites again on PostgreSQL, the daemon on it (test_store_backend.py),
# two daemons sharing it under one per-workspace cap (test_cluster_caps.py),
# and the REST API's tests with each daemon's store in a PostgreSQL schema of its own
# (TRUNKLINE_IT_STORE_PG in tests/integration/conftest.py; other integration files run so
# too, except the checks of SQLite's file at rest, and tests that start `trunkline serve`
# or `trunkline token` themselves on a daemon's data_dir, as test_master_key.py does).
# tests/pg/with-postgres.sh starts a throwaway server (Debian's postgresql package) and
# removes it afterwards.
STORE_UNIT := $(addprefix $(BUILD)/tests/,test_store test_records test_routing test_secrets test_cluster)
test-pg: $(STORE_UNIT) $(BUILD)/trunkline
	@tests/pg/with-postgres.sh sh -c 'set -e; for t in $(STORE_UNIT); do echo "== $$t (PostgreSQL)"; $$t; done; \
	  TRUNKLINE_BIN=$(abspath $(BUILD)/trunkline) $(PYTHON) -m pytest -q tests/integration/test_store_backend.py tests/integration/test_cluster_caps.py; \
	  TRUNKLINE_IT_STORE_PG="$$TRUNKLINE_TEST_PG" TRUNKLINE_BIN=$(abspath $(BUILD)/trunkline) $(PYTHON) -m pytest -q tests/integration/test_api.py'

integration: $(BUILD)/trunkline $(BUILD)/trunkline-test
	TRUNKLINE_BIN=$(abspath $(BUILD)/trunkline) TRUNKLINE_TEST_BIN=$(abspath $(BUILD)/trunkline-test) \
	  $(PYTHON) -m pytest -q tests/integration
	TRUNKLINE_BIN=$(abspath $(BUILD)/trunkline) $(PYTHON) -m pytest -q tests/browser

# the web UI in headless Chromium only (screenshots in build/screenshots/)
browser: $(BUILD)/trunkline
	TRUNKLINE_BIN=$(abspath $(BUILD)/trunkline) $(PYTHON) -m pytest -q tests/browser

test: unit test-pg integration

# every binary `test` and `tsan-test` run, without running them (.ci/run builds the
# sanitizer variants while the plain tests run)
testbins: $(UNIT_BIN) $(BUILD)/trunkline $(BUILD)/trunkline-test

# Under ThreadSanitizer (make TSAN=1 tsan-test): the unit tests of the parts shared between
# threads (store, routing cache, recorder, mailbox), then the whole integration suite against
# the TSan daemon, which runs the loop, the API thread and the recorder together (≈10 min on
# two cores: the suite waits on sockets far more than it computes).
TSAN_UNIT := $(addprefix $(BUILD)/tests/,test_routing test_records test_store test_mailbox test_cluster)
tsan-test: $(TSAN_UNIT) $(BUILD)/trunkline $(BUILD)/trunkline-test
	@set -e; for t in $(TSAN_UNIT); do echo "== $$t"; $$t; done
	TRUNKLINE_BIN=$(abspath $(BUILD)/trunkline) TRUNKLINE_TEST_BIN=$(abspath $(BUILD)/trunkline-test) $(PYTHON) -m pytest -q tests/integration

run: $(BUILD)/trunkline
	./$(BUILD)/trunkline serve

# libFuzzer: every tests/fuzz/fuzz_*.c becomes one target linked with the library, which is
# compiled once with coverage instrumentation (fuzzer-no-link) into build-fuzz/libfuzz.a.
FUZZ_CC    := clang-14
FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -Isrc -fsanitize=address,undefined $(shell pkg-config --cflags $(PKGS))
FUZZ_SRC   := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN   := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
FUZZ_OBJ   := $(LIB_SRC:%.c=build-fuzz/%.o)
build-fuzz/%.o: %.c
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
build-fuzz/libfuzz.a: $(FUZZ_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^
build-fuzz/%: tests/fuzz/%.c build-fuzz/libfuzz.a
	@$(if $(Q),echo "  FUZZ $@")
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< build-fuzz/libfuzz.a $(LDLIBS)
fuzz: $(FUZZ_BIN)
FUZZ_SECONDS ?= 20
fuzz-smoke: $(FUZZ_BIN)
	@set -e; for f in $(FUZZ_BIN); do n=$$(basename $$f); mkdir -p build-fuzz/corpus-$$n; \
	  echo "== $$n ($(FUZZ_SECONDS) s)"; \
	  seeds=tests/fuzz/corpus/$$n; [ -d $$seeds ] || seeds=; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 build-fuzz/corpus-$$n $$seeds; done

PREFIX ?= /usr/local
install: $(BUILD)/trunkline
	install -D -m 0755 $(BUILD)/trunkline $(DESTDIR)$(PREFIX)/bin/trunkline

format:
	clang-format -i $$(find src tests bench -name '*.[ch]')

clean:
	rm -rf build build-asan build-tsan build-fuzz

.PHONY: tsan-test testbins testbuild loadgen bench-twilio bench-routing bench-cluster install all unit test-pg integration browser test run fuzz fuzz-smoke format clean
.SECONDARY:
-include $(shell find $(BUILD) build-fuzz -name '*.d' 2>/dev/null)
