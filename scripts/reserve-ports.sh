#!/usr/bin/env bash
# Keep the test services' fixed loopback ports out of the kernel's ephemeral range, so a
# port picked by binding to 0 (a test's free_port, Moorage publishing a container on "any
# port") is never one of them: Caddy gives 58001/58002 up for a moment when a test
# restarts it, and pebble validates on exactly those. Linux ip_local_reserved_ports.
set -uo pipefail
PORTS="52222,55432,58001,58002,58053,58400,58401,59000"  # sftp postgres caddy bind pebble s3
knob=/proc/sys/net/ipv4/ip_local_reserved_ports
current=$(cat "$knob" 2>/dev/null) || exit 0
merged=$(printf '%s\n' "$current" "$PORTS" | tr ',' '\n' | sed '/^$/d' | sort -un | paste -sd, -)
[ "$merged" = "$current" ] && exit 0
echo "$merged" > "$knob" 2>/dev/null ||
  echo "warning: cannot reserve the test ports ($PORTS) in $knob; a test may take one" >&2
exit 0
