# relayd - build, test and run. `make run` and `make test` are the whole
# setup on a fresh Debian 12 machine: both install missing packages first.

CC      ?= cc
PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
BIN     ?= bin
SAN     ?=
MANDIR  ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system

PKGS    := libcares openssl sqlite3
PKGS    += libsystemd
PKGS    += libmicrohttpd
PKGS    += libidn2
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -pthread -Wall -Wextra -Werror -D_GNU_SOURCE -I. -MMD -MP
CFLAGS  += $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcrypt -pthread
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null)

ifneq ($(SAN),)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

# Debian packages: to build, and to run the tests with real peers.
DEB_BUILD := gcc make pkg-config libc-ares-dev libssl-dev libsqlite3-dev libcrypt-dev check
DEB_BUILD += libsystemd-dev
DEB_BUILD += libmicrohttpd-dev
DEB_BUILD += libidn2-dev
DEB_TEST  := swaks dnsmasq-base python3 python3-aiosmtpd python3-dnslib python3-dkim python3-nacl openssl procps iproute2 bsd-mailx
DEB_TEST  += mandoc groff-base haproxy postfix
DEB_TEST  += python3-prometheus-client
DEB_TEST  += opendkim-tools
# The lab's tutorial: nc and dig.
DEB_TEST  += netcat-openbsd bind9-dnsutils
# To build the Debian package and test it in a chroot (`make deb`, `make
# deb-test`); the package's own Build-Depends come from debian/control.
DEB_PKG   := dpkg-dev debhelper fakeroot lintian debootstrap git util-linux iproute2
DEB_OUT   ?= build/deb

# Every .c in these folders is library code; the programs' mains are apart.
LIB_DIRS := common queue resolver relayd/master relayd/intake relayd/delivery relayd/sendmail
LIB_SRC  := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB      := $(BUILD)/librelayd.a
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

all: $(BIN)/relayd $(BIN)/relayctl $(BIN)/sendmail

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN)/relayd: $(BUILD)/relayd/relayd.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/relayctl: $(BUILD)/relayd/relayctl.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/sendmail: $(BUILD)/relayd/sendmail.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%.o: tests/unit/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CHECK_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CHECK_LIBS)

unit-bins: $(UNIT_BIN)

# deps: install what is missing (root), or say what to install.
deps:
	@missing=$$(for p in $(DEB_BUILD) $(DEB_TEST) $(DEB_EXTRA); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "installing: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
		echo "missing packages; run: sudo apt-get install -y $$missing"; exit 1; \
	fi

# The runner's self-test runs first, under unittest's own verdict: a runner
# that could call a broken file a pass would make the rest worthless.
test: deps
	$(MAKE) selftest
	$(MAKE) all unit-bins
	BUILD=$(BUILD) BIN=$(BIN) bash tests/run.sh

selftest:
	cd tests/selftest && /usr/bin/python3 -m unittest -v test_run_sh

# Deliberate one-line breaks, each of which the suite must catch (not part of
# `make test`; see tests/mutate.sh).
mutate: deps
	bash tests/mutate.sh

# Sanitizer reports of every process (daemons and their workers too, whose
# stderr ends in a test's temp dir) land in SAN_LOG, which run.sh checks after
# each test: any report fails the run. gcc's libubsan ignores log_path next to
# ASan, so the harness copies UBSan's "runtime error" lines from relayd's log
# there. A small quarantine keeps intake's peak-RSS test meaningful under ASan.
SAN_LOG := $(CURDIR)/build/san/reports
sanitize: deps
	$(MAKE) BUILD=build/san BIN=build/san/bin SAN=1 all unit-bins
	rm -rf $(SAN_LOG) && mkdir -p -m 1777 $(SAN_LOG)
	BUILD=build/san BIN=build/san/bin SANITIZE_LOG_DIR=$(SAN_LOG) \
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:quarantine_size_mb=8:log_path=$(SAN_LOG)/asan \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 bash tests/run.sh

run: deps
	$(MAKE) all
	@mkdir -p var
	$(BIN)/relayd -d -f etc/relayd.conf

# The lab (docs/lab.md): a little internet on loopback until Ctrl-C; its
# tutorial checked step by step; a fault drill under load. Not part of
# `make test` (each takes longer than a minute or runs until stopped).
lab: deps
	$(MAKE) all
	/usr/bin/python3 lab/lab.py

lab-test: deps
	$(MAKE) all
	/usr/bin/python3 lab/lab_test.py

lab-chaos: deps
	$(MAKE) all
	/usr/bin/python3 lab/lab_chaos.py

FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_SECONDS ?= 30
# libFuzzer comes with clang's runtime.
fuzz:
	@$(MAKE) -s deps DEB_EXTRA="clang libclang-rt-14-dev"
	@command -v clang >/dev/null || (echo "fuzz needs clang"; exit 1)
	@mkdir -p build/fuzz
	@for f in $(FUZZ_SRC); do \
		n=$$(basename $$f .c); \
		clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. $(shell pkg-config --cflags $(PKGS)) \
			-o build/fuzz/$$n $$f $(filter-out %/relayd.c %/relayctl.c,$(LIB_SRC)) $(LDLIBS) || exit 1; \
		mkdir -p build/fuzz/$$n.corpus; \
		build/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=build/fuzz/$$n- build/fuzz/$$n.corpus || exit 1; \
	done

# The packages, built from a copy of the tree (tests/deb/build.sh): .deb
# files, build.log and lintian.log in DEB_OUT.
deb:
	@$(MAKE) -s deps DEB_EXTRA="$(DEB_PKG)"
	bash tests/deb/build.sh . $(DEB_OUT)

# Builds from a git clone, installs into a debootstrap chroot, runs relayd,
# purges (tests/deb/test.sh); 1.5-2 minutes, not part of `make test`.
deb-test:
	@$(MAKE) -s deps DEB_EXTRA="$(DEB_PKG)"
	bash tests/deb/test.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/relayd
	install -m 755 $(BIN)/relayd $(DESTDIR)$(PREFIX)/sbin/relayd
	install -m 755 $(BIN)/relayctl $(DESTDIR)$(PREFIX)/bin/relayctl
	install -m 755 $(BIN)/sendmail $(DESTDIR)$(PREFIX)/sbin/relayd-sendmail
	install -m 644 etc/relayd.conf $(DESTDIR)/etc/relayd/relayd.conf.example
	install -d $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR)
	install -m 644 $(wildcard man/*.5) $(DESTDIR)$(MANDIR)/man5
	install -m 644 $(filter-out man/sendmail.8,$(wildcard man/*.8)) $(DESTDIR)$(MANDIR)/man8
	# Named as the program it documents, so it never replaces the system MTA's sendmail(8).
	install -m 644 man/sendmail.8 $(DESTDIR)$(MANDIR)/man8/relayd-sendmail.8
	sed 's|=/usr/sbin/relayd |=$(PREFIX)/sbin/relayd |' etc/relayd.service > $(DESTDIR)$(UNITDIR)/relayd.service
	chmod 644 $(DESTDIR)$(UNITDIR)/relayd.service
	[ -d $(DESTDIR)/var/spool/relayd ] || install -d -m 711 $(DESTDIR)/var/spool/relayd

clean:
	rm -rf build bin var

.PHONY: all test selftest mutate sanitize run deps install clean fuzz unit-bins deb deb-test lab lab-test lab-chaos

-include $(LIB_OBJ:.o=.d) $(UNIT_BIN:=.d) $(BUILD)/relayd/relayd.d $(BUILD)/relayd/relayctl.d \
	$(BUILD)/relayd/sendmail.d
