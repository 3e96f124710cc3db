# pushgate — `make run` starts the daemon on embedded defaults; `make test`
# runs the whole suite. Both install what they need on a fresh Debian
# machine (as root, or with sudo available).

SHELL := /bin/bash
CARGO ?= cargo
# Packages the build and the tests need: libclang/nettle for sequoia's
# backend, cmake for CharLS (JPEG-LS), DCMTK as the DICOM peer (dcmqrscp
# as a PACS too), Orthanc as a PACS for query/retrieve (src/dimse/scu/qr)
# and the benchmark reference, GnuPG and sq as OpenPGP peers, curl, strace
# (durability-order test), OpenJPEG's and OpenJPH's encoders (JPEG 2000 and
# HTJ2K test data), unzip and python3 (zipfile) as ZIP readers, dicom3tools
# (dciodvfy) to validate the DICOMDIR of downloads; Chromium, its driver
# and Selenium as the recipient's browser, python3-venv for the client venv
# (tests/clients.rs); dpkg-dev (dpkg-shlibdeps), lintian and systemd
# (systemd-analyze, systemd-sysusers) build and check the Debian package
# (make deb, tests/package.rs); oathtool computes TOTP codes for the
# console's local logins independently of pushgate (tests/console_login.rs);
# nodejs runs the OpenID provider of tests/console_oidc.rs (oidc-provider
# from npm, tests/oidc/install.sh).
DEB_PACKAGES := orthanc oathtool build-essential pkg-config cmake libclang-dev nettle-dev dcmtk gnupg sq curl ca-certificates openssl strace libopenjp2-tools openjph-tools unzip python3 dicom3tools chromium chromium-driver python3-selenium python3-venv dpkg-dev lintian systemd nodejs
BENCH_PACKAGES := orthanc orthanc-dicomweb time python3 nginx openssl

.PHONY: run test deps pyenv bench-deps build release lint bench samples clean deb

# Python clients for tests/clients.rs (and the Prometheus project's parser
# for tests/operations.rs; pydicom-data: the part of pydicom's test corpus
# pydicom does not bundle, for tests/pydicom_corpus.rs): dicomweb-client (PyPI only) in a venv
# under target/ made from Debian's python3, which also sees Debian's
# python3-selenium. Re-made only when this list changes.
PYENV := target/pyenv
PY_PACKAGES := dicomweb-client==0.61.2 pydicom==3.0.2 pydicom-data==1.0.0 pillow==13.0.0 numpy==2.4.6 requests==2.34.2 prometheus-client==0.26.0 httpx[http2]==0.28.1

deps:
	@./packaging/install-deps.sh $(DEB_PACKAGES)
	@./tests/oidc/install.sh >/dev/null

bench-deps:
	@./packaging/install-deps.sh $(DEB_PACKAGES) $(BENCH_PACKAGES)

build: deps
	$(CARGO) build --release --bin pushgate

run: build
	./target/release/pushgate serve

pyenv: deps
	@if [ "$$(cat $(PYENV)/.packages 2>/dev/null)" != "$(PY_PACKAGES)" ]; then \
	  echo "creating $(PYENV): $(PY_PACKAGES)"; \
	  rm -rf $(PYENV) && \
	  /usr/bin/python3 -m venv --system-site-packages $(PYENV) && \
	  $(PYENV)/bin/pip install -q --disable-pip-version-check $(PY_PACKAGES) && \
	  echo "$(PY_PACKAGES)" > $(PYENV)/.packages; \
	fi

test: deps pyenv
	$(CARGO) build --release --bins
	$(CARGO) test --release -- --test-threads=2

# target/debian/pushgate_<version>_<arch>.deb from the release binary
# (packaging/build-deb.sh; docs/install.md).
deb: build
	./packaging/build-deb.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

samples:
	$(CARGO) run --release --bin pushgate-samples -- samples sample-dicom

bench: bench-deps
	$(CARGO) build --release --bins
	./bench/intake.sh --repeat 3
	./bench/retrieve.sh --repeat 3
	./bench/authz.sh
	./bench/relay.sh --repeat 3
	./bench/console.sh

clean:
	$(CARGO) clean
	rm -rf pushgate-data bench/out
