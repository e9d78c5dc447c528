# TaskStream - see README.md. `make` builds, `make test` tests, `make demo`
# shows it working. Nothing to configure first: missing Debian packages are
# installed by `make deps`, which test and demo run for you.

PREFIX ?= /usr/local
DESTDIR ?=
VERSION := 0.1.0

CC ?= cc
PKGS := rdkafka libcjson libcurl libesmtp-1.0 libmicrohttpd openssl
SANITIZE ?=
comma := ,

ifeq ($(SANITIZE),)
VARIANT := default
else
VARIANT := $(subst $(comma),-,$(SANITIZE))
endif
B := build/$(VARIANT)

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread \
	  -DTS_VERSION='"$(VERSION)"' -Ilib $(PKG_CFLAGS)
LDLIBS += $(PKG_LIBS) -lpthread -lm
ifneq ($(SANITIZE),)
CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif

LIB_SRC := $(sort $(wildcard lib/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
LIB := $(B)/libtaskstream.a

TOOLS := $(notdir $(wildcard cmd/ts-*))
TOOL_BINS := $(TOOLS:%=$(B)/bin/%)

UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)

MAN_SRC := $(wildcard docs/*.scd)
MAN := $(MAN_SRC:.scd=)

.PHONY: all deps test unit demo bench install clean man check-deps fuzz valgrind

all: $(TOOL_BINS) bin man

# bin/ points at the variant built last, so tests and the demo run it.
bin: $(TOOL_BINS) FORCE
	@if [ "$$(readlink bin 2>/dev/null)" != "$(B)/bin" ]; then \
		rm -rf bin && ln -s $(B)/bin bin; fi
FORCE:

$(B)/%.o: %.c $(wildcard lib/*.h) | check-deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

define tool_rule
$(B)/bin/$(1): $(patsubst %.c,$(B)/%.o,$(wildcard cmd/$(1)/*.c)) $(LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach t,$(TOOLS),$(eval $(call tool_rule,$(t))))

$(B)/tests/%: $(B)/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

man: $(MAN)
docs/%: docs/%.scd
	scdoc < $< > $@

unit: $(UNIT_BINS)

# Quietly install what is missing; a no-op when everything is there.
check-deps:
	@./scripts/deps --check-or-install

deps:
	./scripts/deps

test: all unit
	./tests/run $(B)

demo: all
	./scripts/demo

bench: all
	./scripts/deps --bench
	./bench/run

fuzz:
	./tests/fuzz/run $(FUZZ_SECONDS)

# ts-worker and ts-httpd under valgrind memcheck through their suites.
valgrind:
	./scripts/valgrind

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(TOOL_BINS) $(DESTDIR)$(PREFIX)/bin/
	for m in $(MAN); do install -m 0644 $$m $(DESTDIR)$(PREFIX)/share/man/man1/; done

clean:
	rm -rf build bin $(MAN)

-include $(shell find build -name '*.d' 2>/dev/null)
