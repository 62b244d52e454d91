# postern — plain GNU make.  `make help` lists the targets.
PREFIX   ?= /usr/local
SBINDIR  ?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
DESTDIR  ?=

CC       ?= cc
CFLAGS   ?= -O2 -g
HARDEN    = -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE -fno-strict-overflow
WARN      = -std=c17 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-unused-parameter
CPPFLAGS += -D_GNU_SOURCE -iquote common
LDHARDEN  = -pie -Wl,-z,relro,-z,now -Wl,-z,noexecstack
LIBS      = -lssl -lcrypto -lpam -lwrap -linih -llockfile

# make SAN=1: the same build under AddressSanitizer + UndefinedBehaviorSanitizer.
ifeq ($(SAN),1)
BUILD    ?= build/san
SANFLAGS  = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
HARDEN    = -fstack-protector-strong -fPIE
else
BUILD    ?= build/rel
SANFLAGS  =
endif

ALL_CFLAGS  = $(WARN) $(HARDEN) $(SANFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(LDHARDEN) $(SANFLAGS) $(LDFLAGS)
ifeq ($(SAN),1)
# ASan intercepts crypt(); libcrypt must be loaded from the start, not later by
# pam_unix.so, or the interceptor has nothing to call and pam_unix crashes.
LIBS += -Wl,--no-as-needed -lcrypt -Wl,--as-needed
endif

COMMON_SRC = $(wildcard common/*.c)
COMMON_OBJ = $(COMMON_SRC:%.c=$(BUILD)/%.o)
POP3_SRC   = $(wildcard ipop3d/*.c)
POP3_OBJ   = $(POP3_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC   = $(wildcard tests/unit/test_*.c)
UNIT_BIN   = $(UNIT_SRC:%.c=$(BUILD)/%)

.PHONY: all check unit integ san fuzz fuzz-smoke install uninstall demo bench clean help deps
all: ipop3d/ipop3d

$(BUILD)/%.o: %.c $(wildcard common/*.h ipop3d/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libcommon.a: $(COMMON_OBJ)
	rm -f $@ && ar rcs $@ $^

# The daemon itself; ipop3d/ipop3d is the release build (or the SAN build under SAN=1).
$(BUILD)/ipop3d/ipop3d: $(POP3_OBJ) $(BUILD)/libcommon.a
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $(POP3_OBJ) $(BUILD)/libcommon.a $(LIBS)

# cp + mv: a running ipop3d (a demo, a test) keeps its old inode; no "text file busy".
ipop3d/ipop3d: $(BUILD)/ipop3d/ipop3d
	cp $< $@.tmp && mv -f $@.tmp $@

# Unit tests link everything but main.c so they can reach the daemon's parsers.
POP3_LIBOBJ = $(filter-out $(BUILD)/ipop3d/main.o,$(POP3_OBJ))
$(BUILD)/tests/unit/%: tests/unit/%.c tests/unit/unit.h $(POP3_LIBOBJ) $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -iquote ipop3d -iquote tests/unit $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(POP3_LIBOBJ) $(BUILD)/libcommon.a $(LIBS)

deps:
	@sh tests/install-deps.sh

unit: $(UNIT_BIN)
	@sh tests/run-unit.sh $(UNIT_BIN)

# fuzz/: one libFuzzer target per parser, built with clang.
FUZZ_SRC = $(wildcard fuzz/fuzz_*.c)
FUZZ_BIN = $(FUZZ_SRC:fuzz/%.c=build/fuzz/%)
FUZZ_LIB_SRC = $(COMMON_SRC) $(filter-out ipop3d/main.c,$(POP3_SRC))
build/fuzz/%: fuzz/%.c $(FUZZ_LIB_SRC) $(wildcard common/*.h ipop3d/*.h)
	@mkdir -p build/fuzz
	clang -std=c17 -D_GNU_SOURCE -DFUZZING -iquote common -iquote ipop3d -g -O1 -fsanitize=fuzzer,address,undefined \
	  -o $@ $< $(FUZZ_LIB_SRC) $(LIBS)
fuzz: $(FUZZ_BIN)
fuzz-smoke: $(FUZZ_BIN)
	@sh fuzz/smoke.sh $(FUZZ_BIN)

# make check: install what a fresh Debian 12 lacks, then build and run every test:
# unit tests (release and ASan/UBSan), fuzz smoke runs, integration tests with real
# clients, launchers, PAM and accounts, and the integration tests again under ASan/UBSan.
check: deps
	@sh tests/check.sh

integ: all
	@sh tests/run-integ.sh

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/postern $(DESTDIR)$(SYSCONFDIR)/pam.d
	install -m 0755 ipop3d/ipop3d $(DESTDIR)$(SBINDIR)/ipop3d
	install -m 0755 mkcert.sh $(DESTDIR)$(SBINDIR)/postern-mkcert
	for f in pam.d/*; do [ -e $(DESTDIR)$(SYSCONFDIR)/$$f ] || install -m 0644 $$f $(DESTDIR)$(SYSCONFDIR)/$$f; done
	[ -e $(DESTDIR)$(SYSCONFDIR)/postern/postern.conf ] || install -m 0644 postern.conf.sample $(DESTDIR)$(SYSCONFDIR)/postern/postern.conf
	install -d $(DESTDIR)$(PREFIX)/share/postern
	install -m 0644 inetd.conf.sample postern.conf.sample fail2ban/postern.jail.sample $(DESTDIR)$(PREFIX)/share/postern/
	install -m 0755 tests/mkuser.sh $(DESTDIR)$(PREFIX)/share/postern/mkuser.sh
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system
	for f in systemd/*.socket systemd/*.service; do \
	  sed 's|/usr/local/sbin/|$(SBINDIR)/|g' $$f > $(DESTDIR)$(PREFIX)/lib/systemd/system/$${f#systemd/} && \
	  chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/$${f#systemd/}; done
	install -d $(DESTDIR)$(SYSCONFDIR)/fail2ban/filter.d
	install -m 0644 fail2ban/postern.conf $(DESTDIR)$(SYSCONFDIR)/fail2ban/filter.d/postern.conf
	@if [ -z "$(DESTDIR)" ]; then sh tests/mkuser.sh; fi

# Configuration that an administrator may have edited (/etc/postern, /etc/pam.d/pop3)
# and state (/var/lib/postern, the postern user) are left in place.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/ipop3d $(DESTDIR)$(SBINDIR)/postern-mkcert
	rm -rf $(DESTDIR)$(PREFIX)/share/postern
	rm -f $(DESTDIR)$(PREFIX)/lib/systemd/system/postern-pop3*
	rm -f $(DESTDIR)$(SYSCONFDIR)/fail2ban/filter.d/postern.conf

demo: deps all
	@sh demo/demo.sh

bench: deps all
	@sh bench/run.sh

clean:
	rm -rf build ipop3d/ipop3d

help:
	@echo "targets: all check unit integ fuzz fuzz-smoke install uninstall demo bench clean"
