#!/bin/sh
# Builds the Debian package from an already built release binary:
#   packaging/build-deb.sh [--binary PATH] [--out DIR] [--version VERSION]
# Defaults: target/release/pushgate, target/debian, the version in Cargo.toml.
# Prints the .deb's path. `make deb` runs it after `cargo build --release`.
#
# The control files are hand-written (packaging/debian/); Depends: is what
# dpkg-shlibdeps finds the binary linked against (libc, nettle/hogweed/gmp
# for sequoia, libstdc++ for CharLS ...), never a list kept by hand.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
binary=$top/target/release/pushgate
out=$top/target/debian
version=""

while [ $# -gt 0 ]; do
	case $1 in
	--binary) binary=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--version) version=$2; shift 2 ;;
	*) echo "usage: $0 [--binary PATH] [--out DIR] [--version VERSION]" >&2; exit 2 ;;
	esac
done

cargo_version=$(sed -n '/^\[package\]/,/^\[/ s/^version *= *"\(.*\)"/\1/p' "$top/Cargo.toml")
version=${version:-$cargo_version}
arch=$(dpkg --print-architecture)
[ -x "$binary" ] || { echo "no binary at $binary: run cargo build --release --bin pushgate" >&2; exit 1; }

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$out/build-$version
rm -rf "$work"
root=$work/debian/pushgate
mkdir -p "$root/DEBIAN"

# The changelog: packaging/debian/changelog; a version not at its top (a
# local rebuild with --version) gets an entry of its own saying so.
changelog=$work/changelog
top_version=$(sed -n '1s/^pushgate (\([^)]*\)).*/\1/p' "$here/debian/changelog")
if [ "$top_version" != "$version" ]; then
	{
		printf 'pushgate (%s) bookworm; urgency=medium\n\n' "$version"
		printf '  * Local rebuild of %s as %s.\n\n' "$top_version" "$version"
		printf ' -- %s  %s\n\n' "$(sed -n 's/^Maintainer: //p' "$here/debian/control.in")" \
			"$(date -R -u -d "@$(stat -c %Y "$binary")")"
		cat "$here/debian/changelog"
	} >"$changelog"
else
	cp "$here/debian/changelog" "$changelog"
fi
# File dates in the package: the changelog's, so a rebuild is identical.
SOURCE_DATE_EPOCH=$(date -d "$(sed -n 's/^ -- .*>  //p' "$changelog" | head -n1)" +%s)
export SOURCE_DATE_EPOCH

install -D -m 0755 "$binary" "$root/usr/bin/pushgate"
strip --strip-unneeded --remove-section=.comment "$root/usr/bin/pushgate"
# bookworm keeps units in /lib (usrmerge moratorium); sysusers.d has no /lib.
install -D -m 0644 "$top/systemd/pushgate.service" "$root/lib/systemd/system/pushgate.service"
install -D -m 0644 "$here/pushgate.sysusers" "$root/usr/lib/sysusers.d/pushgate.conf"
install -D -m 0644 "$here/pushgate.toml" "$root/etc/pushgate/pushgate.toml"

doc=$root/usr/share/doc/pushgate
install -d -m 0755 "$doc" "$root/usr/share/man/man1"
gzip -9n <"$changelog" >"$doc/changelog.gz"
gzip -9n <"$top/docs/install.md" >"$doc/install.md.gz"
gzip -9n <"$here/pushgate.1" >"$root/usr/share/man/man1/pushgate.1.gz"
crates=$(cd "$top" && cargo tree --offline --edges normal --prefix none \
	--format '{p}: {l}' --target "$(rustc -vV | sed -n 's/^host: //p')" |
	sed -e 's/ (\*)$//' -e 's/ (proc-macro)//' | sort -u | grep -v '^pushgate v' |
	sed -e 's/^/ /')
awk -v crates="$crates" '$0 == "@CRATES@" { print crates; next } { print }' \
	"$here/debian/copyright.in" >"$doc/copyright"
chmod 0644 "$doc"/*

# Depends: from the binary's dynamic libraries.
mkdir -p "$work/debian"
printf 'Source: pushgate\n\nPackage: pushgate\nArchitecture: %s\n' "$arch" >"$work/debian/control"
depends=$(cd "$work" && dpkg-shlibdeps -O -e"$root/usr/bin/pushgate" |
	sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "dpkg-shlibdeps found no dependencies" >&2; exit 1; }

for script in postinst prerm postrm; do
	install -m 0755 "$here/debian/$script" "$root/DEBIAN/$script"
done
install -m 0644 "$here/debian/conffiles" "$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
	xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@INSTALLED_SIZE@/$size/" \
	-e "s/@DEPENDS@/$depends/" "$here/debian/control.in" >"$root/DEBIAN/control"

deb=$out/pushgate_${version}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
