#!/usr/bin/env bash
# Runs inside a simulated fleet host's fresh mount and UTS namespaces, already in its network namespace
# (tests/fleet/fleet.sh starts it with unshare + nsenter). Gives the host what a real host has for itself
# and then starts its Docker Engine and its SSH server, which keep the namespaces alive:
#   hostname               <name>
#   /sys                   a sysfs of the host's network namespace (the machine's cgroup mounts moved in)
#   /run                   <run>/            (docker.sock, docker/, containerd/, sshd/, pid files)
#   /var/lib/docker        <lib>/docker      (the engine's data root)
#   /etc/docker            <lib>/etc-docker  (daemon.json, key.json: an engine ID of its own)
#   /opt                   <lib>/opt         (where the roles keep each stack's files; /opt/acestream only
#                                             when the checkout itself lives under /opt)
# Everything else (packages, /root, the checkout and its virtualenv) is the machine's, as on a golden image.
# Mounts made here are private: the machine's mount table is never changed.
#   host-init.sh NAME RUN_DIR LIB_DIR CONF_DIR OPT_DIR
set -euo pipefail

name=$1 run=$2 lib=$3 conf=$4 opt=${5:-/opt}

hostname "$name"

# A sysfs that shows this network namespace's interfaces; keep the cgroup hierarchy dockerd needs.
mkdir -p "$lib/.cgroup"
mount --rbind /sys/fs/cgroup "$lib/.cgroup"
umount -l /sys
mount -t sysfs sysfs /sys
mount --move "$lib/.cgroup" /sys/fs/cgroup

# Forget the machine's mounts below the host's own paths (the main engine's netns and overlay mounts, the
# other hosts' namespace files): no reference to them stays in this namespace.
private=(/run /var/lib/docker /etc/docker "$opt")
for path in "${private[@]}"; do
  mkdir -p "$path"
  awk -v p="$path" '$5 == p || index($5, p "/") == 1 {print $5}' /proc/self/mountinfo | sort -r \
    | while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
done
mkdir -p "$lib/docker" "$lib/etc-docker" "$lib/opt"
mount --bind "$lib/docker" /var/lib/docker
mount --bind "$lib/etc-docker" /etc/docker
mount --bind "$lib/opt" "$opt"
mount --bind "$run" /run
mkdir -p /run/sshd /run/lock
chmod 755 /run/sshd

# The engine: default socket and paths, which are now this host's own.
setsid dockerd --config-file /etc/docker/daemon.json --containerd-namespace "acestream-$name" \
  --containerd-plugins-namespace "acestream-$name-plugins" </dev/null >>"$conf/dockerd.log" 2>&1 &

/usr/sbin/sshd -f "$conf/sshd_config" -E "$conf/sshd.log" </dev/null >/dev/null 2>&1
