# Sourced by test.sh and demo.sh after bootstrap.sh: the harness's settings for this machine.
# A setting already in the environment wins; the defaults fit a machine without a registry.
# shellcheck shell=bash
ZKLOCK_ZOOKEEPER_IMAGE=${ZKLOCK_ZOOKEEPER_IMAGE:-$(cat "$repo/.venv/zookeeper-image")}
export ZKLOCK_ZOOKEEPER_IMAGE                      # bootstrap's choice (it honours the setting too)
export ZKLOCK_ZOOKEEPER_PULL=${ZKLOCK_ZOOKEEPER_PULL:-never}  # no registry: fail clearly, never pull
export TESTCONTAINERS_RYUK_DISABLED=true           # Ryuk's image cannot be pulled either
export TESTCONTAINERS_CONNECTION_MODE=docker_host  # /.dockerenv must not mean "in a container"
export TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1      # ports are published on loopback only
