#!/usr/bin/env bash
# Turn a fresh Raspberry Pi OS (Bookworm, 64-bit) into a kiosk terminal. Idempotent: every step
# can be re-run. See hardware/README.md.
#
#   provision.sh --bundle FILE --trusted-root ROOT.json [--repo URL] [--config TOML]
#                [--station ID] [--broker mqtts://HOST:PORT --hall HALL]
#                [--root DIR --no-system] [--restart-command CMD] [--update-option OPT]...
#
# --station ID (receipt.station, 3 digits): make this terminal's TLS key in /etc/kiosk/tls/ (EC P-256,
# 0600 kiosk:kiosk; it never leaves the terminal) and print its certificate request (CN = the station)
# for the platform's CA to sign; install the certificate as /etc/kiosk/tls/terminal.pem.
#
# --broker URL --hall HALL: fleet monitoring ([monitor] in kiosk.toml; hardware/mosquitto/ has the
# broker's configuration and ACL). With --station, also a request for the monitoring certificate
# (same key, CN = HALL/STATION, the broker ACL's %u) for the fleet's monitoring CA.
#
# --root DIR --no-system: install into a directory tree (no apt, no systemctl, no raspi-config);
# the tests use it, with --restart-command / --update-option (passed to `kiosk update apply`,
# e.g. "--stable=1") standing in for systemd. $KIOSK_PYTHON chooses the interpreter that runs the installer (default: a
# venv in /opt/kiosk/tools with the updater's two PyPI dependencies).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
root=/
system=1
bundle=""
trusted=""
repo=""
config=""
station=""
broker=""
hall=""
restart=()

die() { echo "provision: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --bundle) bundle=$2; shift 2 ;;
        --trusted-root) trusted=$2; shift 2 ;;
        --repo) repo=$2; shift 2 ;;
        --config) config=$2; shift 2 ;;
        --station) station=$2; shift 2 ;;
        --broker) broker=$2; shift 2 ;;
        --hall) hall=$2; shift 2 ;;
        --root) root=$2; shift 2 ;;
        --no-system) system=0; shift ;;
        --restart-command) restart+=(--restart-command "$2"); shift 2 ;;
        --update-option) restart+=("$2"); shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) die "unknown option $1" ;;
    esac
done
[ -d "$src/systemd" ] && [ -d "$src/kiosk" ] || die "run it from a kiosk checkout ($src has no systemd/ or kiosk/)"
[ -z "$trusted" ] || [ -f "$trusted" ] || die "trusted root not found: $trusted"
[ -z "$bundle" ] || [ -f "$bundle" ] || die "bundle not found: $bundle"
[ -z "$station" ] || [[ "$station" =~ ^[0-9]{3}$ ]] || die "--station: expected 3 digits (receipt.station), got $station"
[ -z "$broker" ] || [[ "$broker" =~ ^mqtts?://[A-Za-z0-9.:-]+:[0-9]+$ ]] || die "--broker: expected mqtts://HOST:PORT, got $broker"
[ -z "$broker" ] || [[ "$hall" =~ ^[A-Za-z0-9_-]{1,64}$ ]] || die "--hall: expected letters, digits, _ or - (needed with --broker), got '$hall'"
[ "$system" = 1 ] && [ "$(id -u)" != 0 ] && die "run as root"
R=${root%/}
step() { echo "provision: $*"; }

if [ "$system" = 1 ]; then
    step "system packages"
    apt-get update
    # Python libraries come from the release bundle (locks/aarch64-cp311.txt, hash-pinned, in the
    # release's site/, first on the launcher's PYTHONPATH): numpy, OpenCV, Pillow, gpiozero and
    # pyserial are the bundle's, never asked of apt, so the two cannot disagree. From apt only:
    #   python3          /usr/bin/python3 runs every release (the bundle's wheels are built for it)
    #   python3-venv     the installer's environment below (/opt/kiosk/tools)
    #   python3-picamera2  the camera: libcamera's Python bindings are built with Raspberry Pi OS's
    #                    libcamera (no wheel on PyPI) and picamera2 comes with them; found in
    #                    /usr/lib/python3/dist-packages, after site/. apt pulls python3-numpy and
    #                    python3-pil in for them; every import still gets the bundle's (site/ first),
    #                    which is why the Pi lock keeps numpy 1.x (the ABI apt's compiled modules use)
    #   python3-lgpio    gpiozero's pin driver on Bookworm (the C library liblgpio with its binding;
    #                    not in the lock)
    apt-get install -y --no-install-recommends python3 python3-venv python3-picamera2 python3-lgpio \
        cage chromium fonts-noto-cjk systemd espeak-ng alsa-utils
    step "serial port for the maintenance console, not for a login"
    raspi-config nonint do_serial_cons 1
    raspi-config nonint do_serial_hw 0
fi

step "users, groups, directories"
install -d "$R/etc" "$R/etc/kiosk" "$R/etc/systemd/system" "$R/etc/udev/rules.d" \
    "$R/usr/lib/sysusers.d" "$R/usr/lib/tmpfiles.d" "$R/boot/firmware"
install -m 0644 "$src/systemd/sysusers.d/kiosk.conf" "$R/usr/lib/sysusers.d/kiosk.conf"
install -m 0644 "$src/systemd/tmpfiles.d/kiosk.conf" "$R/usr/lib/tmpfiles.d/kiosk.conf"
systemd-sysusers --root="$R" "$R/usr/lib/sysusers.d/kiosk.conf"
systemd-tmpfiles --create --root="$R" "$R/usr/lib/tmpfiles.d/kiosk.conf"

step "units and udev rules"
for unit in kiosk.service kiosk-console.service kiosk-ui.service kiosk-update.service kiosk-update.timer kiosk-update-recover.service kiosk-purge.service kiosk-purge.timer; do
    install -m 0644 "$src/systemd/$unit" "$R/etc/systemd/system/$unit"
done
install -m 0644 "$here/udev/99-kiosk.rules" "$R/etc/udev/rules.d/99-kiosk.rules"
install -d "$R/etc/systemd/system.conf.d"
printf '[Manager]\nRuntimeWatchdogSec=15\nRebootWatchdogSec=2min\n' > "$R/etc/systemd/system.conf.d/kiosk-watchdog.conf"

step "boot configuration"
cfg="$R/boot/firmware/config.txt"
touch "$cfg"
# Replace our marked block (or append it): re-running never duplicates lines.
awk '/^# >>> kiosk/{skip=1} !skip{print} /^# <<< kiosk/{skip=0}' "$cfg" > "$cfg.new"
cat "$here/config.txt" >> "$cfg.new"
mv "$cfg.new" "$cfg"

step "configuration /etc/kiosk/kiosk.toml (root's; the technician's changes go to /etc/kiosk/local/)"
if [ ! -f "$R/etc/kiosk/kiosk.toml" ]; then
    {
        echo "# Written by provision.sh: the pin map (hardware/pinmap.toml) and the fleet repository."
        cat "$here/pinmap.toml"
        printf '\n[fleet]\nroot = "/opt/kiosk"\n'
        [ -z "$repo" ] || printf 'repository_url = "%s"\n' "$repo"
        [ -z "$broker" ] || printf '\n[monitor]\nbroker = "%s"\nhall = "%s"\n' "$broker" "$hall"
        [ -z "$config" ] || cat "$config"
    } > "$R/etc/kiosk/kiosk.toml.new"
    chmod 0644 "$R/etc/kiosk/kiosk.toml.new"
    mv "$R/etc/kiosk/kiosk.toml.new" "$R/etc/kiosk/kiosk.toml"
fi
# Root runs what this file names (fleet.restart_command, fleet.unit): only root may change it,
# also on a terminal provisioned before the split (then /etc/kiosk was group-writable).
chmod 0755 "$R/etc/kiosk"
chmod 0644 "$R/etc/kiosk/kiosk.toml"
if [ "$(id -u)" = 0 ]; then chown root:root "$R/etc/kiosk" "$R/etc/kiosk/kiosk.toml"; fi

if [ -n "$station" ]; then
    step "terminal key and certificate request (station $station; the key never leaves this terminal)"
    tls="$R/etc/kiosk/tls"
    install -d -m 0750 "$tls"
    if [ ! -s "$tls/terminal.key" ]; then  # re-running keeps the key (and a certificate signed for it)
        (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tls/terminal.key.new")
        mv "$tls/terminal.key.new" "$tls/terminal.key"
    fi
    chmod 0600 "$tls/terminal.key"
    if [ "$(id -u)" = 0 ]; then  # the service's user, as the target root's sysusers made it
        kuid=$(awk -F: '$1=="kiosk"{print $3}' "$R/etc/passwd")
        kgid=$(awk -F: '$1=="kiosk"{print $3}' "$R/etc/group")
        chown root:"$kgid" "$tls"
        chown "$kuid:$kgid" "$tls/terminal.key"
    fi
    openssl req -new -sha256 -key "$tls/terminal.key" -subj "/O=kiosk terminal/CN=$station" -out "$tls/terminal.csr"
    echo "provision: have the platform's CA sign this request, install the certificate as /etc/kiosk/tls/terminal.pem,"
    echo "provision: then set [receipt] platform_cert = \"/etc/kiosk/tls/terminal.pem\", platform_key = \"/etc/kiosk/tls/terminal.key\""
    cat "$tls/terminal.csr"
    if [ -n "$broker" ]; then  # the monitoring broker's CA signs a second certificate for the same key
        openssl req -new -sha256 -key "$tls/terminal.key" -subj "/O=kiosk terminal/CN=$hall\/$station" -out "$tls/monitor.csr"
        echo "provision: have the monitoring CA sign monitor.csr (CN $hall/$station), install it as /etc/kiosk/tls/monitor.pem,"
        echo "provision: then set [monitor] client_cert = \"/etc/kiosk/tls/monitor.pem\", client_key = \"/etc/kiosk/tls/terminal.key\""
        cat "$tls/monitor.csr"
    fi
fi

py=${KIOSK_PYTHON:-}
if [ -z "$py" ]; then
    step "installer environment"
    python3 -m venv --system-site-packages "$R/opt/kiosk/tools"
    "$R/opt/kiosk/tools/bin/pip" install --quiet 'tuf>=5' 'cryptography>=41'
    py="$R/opt/kiosk/tools/bin/python"
fi
kiosk() { PYTHONPATH="$src" "$py" -P -m kiosk.cli "$@"; }

if [ -n "$trusted" ]; then
    step "trusted fleet root"
    kiosk update provision "$trusted" --root "$R/opt/kiosk" --config "$R/etc/kiosk/kiosk.toml"
fi

if [ "$system" = 1 ]; then
    step "enable the services"
    udevadm control --reload
    udevadm trigger
    systemctl daemon-reload
    systemctl enable kiosk.service kiosk-console.service kiosk-ui.service kiosk-update.timer kiosk-update-recover.service kiosk-purge.timer
fi

if [ -n "$bundle" ]; then
    step "first release (verified, started, health-checked)"
    kiosk update apply "$bundle" --root "$R/opt/kiosk" --state-dir "$R/var/lib/kiosk" \
        --config "$R/etc/kiosk/kiosk.toml" "${restart[@]}"
fi
step "done; reboot to apply config.txt"
