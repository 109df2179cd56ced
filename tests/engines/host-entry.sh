#!/usr/bin/env bash
# The entry point of a Docker host container (tests/engines/engines.sh): what a host gives its Docker Engine,
# then the engine and an SSH server. Runs as PID 1 of a container started with every capability but
# SYS_RESOURCE, seccomp, AppArmor and the system paths unconfined (--privileged is not needed).
set -euo pipefail
# Docker mounts /sys and the cgroup hierarchies read-only in a container that is not privileged: the engine
# inside writes both (network devices, cgroups of its containers).
mount -o remount,rw /sys
if mountpoint -q /sys/fs/cgroup; then
  mount -o remount,rw /sys/fs/cgroup
  # Each hierarchy is a read-only bind of the container's own cgroup: make that bind writable.
  for hierarchy in /sys/fs/cgroup/*/; do
    if mountpoint -q "$hierarchy"; then mount -o remount,rw,bind "$hierarchy"; fi
  done
fi
mkdir -p /run/sshd /root/.ssh
chmod 700 /root/.ssh
install -m 600 /etc/acestream-test/authorized_keys /root/.ssh/authorized_keys
/usr/sbin/sshd -E /var/log/sshd.log
exec dockerd --host unix:///var/run/docker.sock
