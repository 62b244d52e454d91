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
LIBS      = -lssl -lcrypto -lpam -linih -llockfile -lseccomp -lz -lunbound -lidn2

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

# common/ is a stack of libraries, one folder and one archive each.  A library includes
# only from itself and the libraries it names here (tests/check-layers.sh enforces it);
# the list also gives the link order, highest first.
LIBDIRS       = base mail sasl smtp imap index storage privsep spool dns
LIBDEPS_base    = base
LIBDEPS_mail    = mail base
LIBDEPS_sasl    = sasl base
LIBDEPS_smtp    = smtp mail base
LIBDEPS_imap    = imap mail base
LIBDEPS_index   = index mail base
LIBDEPS_storage = storage index mail base
LIBDEPS_privsep = privsep base
LIBDEPS_spool   = spool mail base
LIBDEPS_dns     = dns base
LINK_ORDER    = spool privsep storage index imap smtp sasl dns mail base
empty :=
space := $(empty) $(empty)

HDRS = $(wildcard common/*/*.h ipop3d/*.h imapd/*.h smtp-submit/*.h)
$(foreach l,$(LIBDIRS),$(eval SRC_$(l) = $(wildcard common/$(l)/*.c)))
$(foreach l,$(LIBDIRS),$(eval OBJ_$(l) = $$(SRC_$(l):%.c=$(BUILD)/%.o)))
ARCHIVES   = $(LINK_ORDER:%=$(BUILD)/lib%.a)
libs_for   = $(foreach d,$(LIBDEPS_$(1)),$(BUILD)/lib$(d).a)
POP3_SRC   = $(wildcard ipop3d/*.c)
POP3_OBJ   = $(POP3_SRC:%.c=$(BUILD)/%.o)
IMAP_SRC   = $(wildcard imapd/*.c)
IMAP_OBJ   = $(IMAP_SRC:%.c=$(BUILD)/%.o)
SUBMIT_SRC = $(wildcard smtp-submit/*.c)
SUBMIT_OBJ = $(SUBMIT_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC   = $(wildcard tests/unit/*/test_*.c)
UNIT_BIN   = $(UNIT_SRC:%.c=$(BUILD)/%)

.PHONY: print-libs all check unit integ san fuzz fuzz-smoke install uninstall demo bench clean help deps layers
all: ipop3d/ipop3d imapd/imapd smtp-submit/smtp-submit

$(BUILD)/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(foreach l,$(LIBDIRS),$(eval $(BUILD)/lib$(l).a: $$(OBJ_$(l)) ; rm -f $$@ && ar rcs $$@ $$^))

# The daemon itself; ipop3d/ipop3d is the release build (or the SAN build under SAN=1).
$(BUILD)/ipop3d/ipop3d: $(POP3_OBJ) $(ARCHIVES)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $(POP3_OBJ) $(ARCHIVES) $(LIBS)

# cp + mv: a running ipop3d (a demo, a test) keeps its old inode; no "text file busy".
ipop3d/ipop3d: $(BUILD)/ipop3d/ipop3d
	cp $< $@.tmp && mv -f $@.tmp $@

$(BUILD)/imapd/imapd: $(IMAP_OBJ) $(ARCHIVES)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $(IMAP_OBJ) $(ARCHIVES) $(LIBS)

imapd/imapd: $(BUILD)/imapd/imapd
	cp $< $@.tmp && mv -f $@.tmp $@

$(BUILD)/smtp-submit/smtp-submit: $(SUBMIT_OBJ) $(ARCHIVES)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $(SUBMIT_OBJ) $(ARCHIVES) $(LIBS)

smtp-submit/smtp-submit: $(BUILD)/smtp-submit/smtp-submit
	cp $< $@.tmp && mv -f $@.tmp $@

# A library's unit tests link that library and the ones below it, nothing else; the
# daemon's unit tests (tests/unit/ipop3d/) also link the daemon's objects but main.o.
$(foreach l,$(LIBDIRS),$(eval $(BUILD)/tests/unit/$(l)/%: tests/unit/$(l)/%.c tests/unit/unit.h $$(call libs_for,$(l)) ; \
	@mkdir -p $$(dir $$@) && $$(CC) $$(CPPFLAGS) -iquote tests/unit $$(ALL_CFLAGS) $$(ALL_LDFLAGS) -o $$@ $$< $$(call libs_for,$(l)) $$(LIBS)))
POP3_LIBOBJ = $(filter-out $(BUILD)/ipop3d/main.o,$(POP3_OBJ))
# tests/stub/: the stub monitor, the session-test harness (peer.c) and the session fuzz
# driver (session_fuzz.c) that the daemons' unit tests and fuzz targets share.
STUB_SRC = tests/stub/stub_monitor.c
STUB_HDRS = $(wildcard tests/stub/*.h)
UNIT_STUB_SRC = $(STUB_SRC) tests/stub/peer.c
FUZZ_STUB_SRC = $(STUB_SRC) tests/stub/session_fuzz.c
$(BUILD)/tests/unit/ipop3d/%: tests/unit/ipop3d/%.c tests/unit/unit.h $(UNIT_STUB_SRC) $(STUB_HDRS) $(POP3_LIBOBJ) $(ARCHIVES)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -iquote ipop3d -iquote tests/unit -iquote tests/stub $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(UNIT_STUB_SRC) $(POP3_LIBOBJ) $(ARCHIVES) $(LIBS)

IMAP_LIBOBJ = $(filter-out $(BUILD)/imapd/main.o,$(IMAP_OBJ))
$(BUILD)/tests/unit/imapd/%: tests/unit/imapd/%.c tests/unit/unit.h $(UNIT_STUB_SRC) $(STUB_HDRS) $(IMAP_LIBOBJ) $(ARCHIVES)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -iquote imapd -iquote tests/unit -iquote tests/stub $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(UNIT_STUB_SRC) $(IMAP_LIBOBJ) $(ARCHIVES) $(LIBS)

SUBMIT_LIBOBJ = $(filter-out $(BUILD)/smtp-submit/main.o,$(SUBMIT_OBJ))
$(BUILD)/tests/unit/smtp-submit/%: tests/unit/smtp-submit/%.c tests/unit/unit.h $(UNIT_STUB_SRC) $(STUB_HDRS) $(SUBMIT_LIBOBJ) $(ARCHIVES)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -iquote smtp-submit -iquote tests/unit -iquote tests/stub $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(UNIT_STUB_SRC) $(SUBMIT_LIBOBJ) $(ARCHIVES) $(LIBS)

deps:
	@sh tests/install-deps.sh

unit: $(UNIT_BIN)
	@sh tests/run-unit.sh $(UNIT_BIN)

# fuzz/<lib>/: one libFuzzer target per parser, built with clang from the sources of its
# library and the ones below it (fuzz/ipop3d/: the daemon's parsers, over every library).
FUZZ_SRC = $(wildcard fuzz/*/fuzz_*.c)
FUZZ_BIN = $(foreach f,$(FUZZ_SRC),build/fuzz/$(notdir $(f:.c=)))
FUZZ_CC  = clang -std=c17 -D_GNU_SOURCE -DFUZZING -iquote common -g -O1 -fsanitize=fuzzer,address,undefined
fuzz_libsrc = $(foreach d,$(LIBDEPS_$(1)),$(SRC_$(d)))
$(foreach l,$(LIBDIRS),$(foreach f,$(wildcard fuzz/$(l)/fuzz_*.c),$(eval build/fuzz/$(notdir $(f:.c=)): $(f) $$(call fuzz_libsrc,$(l)) $$(HDRS) ; \
	@mkdir -p build/fuzz && $$(FUZZ_CC) -o $$@ $$< $$(call fuzz_libsrc,$(l)) $$(LIBS))))
$(foreach f,$(wildcard fuzz/ipop3d/fuzz_*.c),$(eval build/fuzz/$(notdir $(f:.c=)): $(f) $$(FUZZ_STUB_SRC) $$(STUB_HDRS) $$(filter-out ipop3d/main.c,$$(POP3_SRC)) $$(foreach l,$$(LIBDIRS),$$(SRC_$$(l))) $$(HDRS) ; \
	@mkdir -p build/fuzz && $$(FUZZ_CC) -iquote ipop3d -iquote tests/stub -o $$@ $$< $$(FUZZ_STUB_SRC) $$(filter-out ipop3d/main.c,$$(POP3_SRC)) $$(foreach l,$$(LIBDIRS),$$(SRC_$$(l))) $$(LIBS)))
$(foreach f,$(wildcard fuzz/imapd/fuzz_*.c),$(eval build/fuzz/$(notdir $(f:.c=)): $(f) $$(FUZZ_STUB_SRC) $$(STUB_HDRS) $$(filter-out imapd/main.c,$$(IMAP_SRC)) $$(foreach l,$$(LIBDIRS),$$(SRC_$$(l))) $$(HDRS) ; \
	@mkdir -p build/fuzz && $$(FUZZ_CC) -iquote imapd -iquote tests/stub -o $$@ $$< $$(FUZZ_STUB_SRC) $$(filter-out imapd/main.c,$$(IMAP_SRC)) $$(foreach l,$$(LIBDIRS),$$(SRC_$$(l))) $$(LIBS)))
$(foreach f,$(wildcard fuzz/smtp-submit/fuzz_*.c),$(eval build/fuzz/$(notdir $(f:.c=)): $(f) $$(FUZZ_STUB_SRC) $$(STUB_HDRS) $$(filter-out smtp-submit/main.c,$$(SUBMIT_SRC)) $$(foreach l,$$(LIBDIRS),$$(SRC_$$(l))) $$(HDRS) ; \
	@mkdir -p build/fuzz && $$(FUZZ_CC) -iquote smtp-submit -iquote tests/stub -o $$@ $$< $$(FUZZ_STUB_SRC) $$(filter-out smtp-submit/main.c,$$(SUBMIT_SRC)) $$(foreach l,$$(LIBDIRS),$$(SRC_$$(l))) $$(LIBS)))
fuzz: $(FUZZ_BIN)
fuzz-smoke: $(FUZZ_BIN)
	@sh fuzz/smoke.sh $(FUZZ_BIN)

# make check: install what a fresh Debian 12 lacks, then build and run every test:
# unit tests (release and ASan/UBSan), fuzz smoke runs, integration tests with real
# clients, launchers, PAM and accounts, and the integration tests again under ASan/UBSan.
check: deps
	@sh tests/check.sh

# Every library includes only from the libraries below it (LIBDEPS_* above).
layers:
	@sh tests/check-layers.sh $(foreach l,$(LIBDIRS),$(l):$(subst $(space),+,$(LIBDEPS_$(l))))

integ: all
	@sh tests/run-integ.sh

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/postern $(DESTDIR)$(SYSCONFDIR)/pam.d
	install -m 0755 ipop3d/ipop3d $(DESTDIR)$(SBINDIR)/ipop3d
	install -m 0755 imapd/imapd $(DESTDIR)$(SBINDIR)/imapd
	install -m 0755 smtp-submit/smtp-submit $(DESTDIR)$(SBINDIR)/smtp-submit
	install -m 0755 mkcert.sh $(DESTDIR)$(SBINDIR)/postern-mkcert
	for f in pam.d/*; do [ -e $(DESTDIR)$(SYSCONFDIR)/$$f ] || install -m 0644 $$f $(DESTDIR)$(SYSCONFDIR)/$$f; done
	[ -e $(DESTDIR)$(SYSCONFDIR)/postern/postern.conf ] || install -m 0644 postern.conf.sample $(DESTDIR)$(SYSCONFDIR)/postern/postern.conf
	install -d $(DESTDIR)$(PREFIX)/share/postern
	install -m 0644 inetd.conf.sample postern.conf.sample fail2ban/postern.jail.sample $(DESTDIR)$(PREFIX)/share/postern/
	install -m 0755 tests/mkuser.sh $(DESTDIR)$(PREFIX)/share/postern/mkuser.sh
	install -d $(DESTDIR)$(PREFIX)/share/postern/cron
	sed 's|/usr/local/sbin/|$(SBINDIR)/|g' cron/postern-queue > $(DESTDIR)$(PREFIX)/share/postern/cron/postern-queue
	chmod 0644 $(DESTDIR)$(PREFIX)/share/postern/cron/postern-queue
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system
	for f in systemd/*.socket systemd/*.service systemd/*.timer; do \
	  sed 's|/usr/local/sbin/|$(SBINDIR)/|g' $$f > $(DESTDIR)$(PREFIX)/lib/systemd/system/$${f#systemd/} && \
	  chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/$${f#systemd/}; done
	install -d $(DESTDIR)$(SYSCONFDIR)/fail2ban/filter.d
	install -m 0644 fail2ban/postern.conf $(DESTDIR)$(SYSCONFDIR)/fail2ban/filter.d/postern.conf
	@# the users postern and postern-spool, /var/lib/postern, /var/spool/postern/{tmp,queue}
	@if [ -z "$(DESTDIR)" ]; then sh tests/mkuser.sh; fi

# Configuration that an administrator may have edited (/etc/postern, /etc/pam.d/pop3)
# and state (/var/lib/postern, the postern and postern-spool users, and the spool
# /var/spool/postern, which may hold mail not yet delivered) are left in place.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/ipop3d $(DESTDIR)$(SBINDIR)/imapd $(DESTDIR)$(SBINDIR)/smtp-submit $(DESTDIR)$(SBINDIR)/postern-mkcert
	rm -rf $(DESTDIR)$(PREFIX)/share/postern
	rm -f $(DESTDIR)$(PREFIX)/lib/systemd/system/postern-pop3* $(DESTDIR)$(PREFIX)/lib/systemd/system/postern-imap*
	rm -f $(DESTDIR)$(PREFIX)/lib/systemd/system/postern-smtp* $(DESTDIR)$(PREFIX)/lib/systemd/system/postern-submission*
	rm -f $(DESTDIR)$(PREFIX)/lib/systemd/system/postern-queue.service $(DESTDIR)$(PREFIX)/lib/systemd/system/postern-queue.timer
	rm -f $(DESTDIR)$(SYSCONFDIR)/fail2ban/filter.d/postern.conf

demo: deps all
	@sh demo/demo.sh

bench: deps all
	@BENCH_PARTS="$(or $(BENCH),$(BENCH_PARTS))" sh bench/run.sh

clean:
	rm -rf build ipop3d/ipop3d imapd/imapd smtp-submit/smtp-submit

# The libraries every daemon links with (tests that build a test-only daemon use it).
print-libs:
	@echo $(LIBS)

help:
	@echo "targets: all check unit integ fuzz fuzz-smoke install uninstall demo bench clean"
