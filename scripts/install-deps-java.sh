#!/usr/bin/env bash
# What the Java SDK needs, installed once (each step checks first); called by mk/java.mk.
#
#   scripts/install-deps-java.sh              install Maven and a JDK >= 22 when missing
#   scripts/install-deps-java.sh --java-home  print the home of a JDK >= 22
#
# The JDK is found, never assumed: JAVA_HOME when it is 22 or newer, else the newest JDK >= 22
# under /usr/lib/jvm (the `java` on PATH may be older). uniffi-bindgen-java is installed by
# mk/java.mk (cargo install --locked, pinned).
set -euo pipefail

MIN_JAVA=22

# The feature version of the JDK at $1 (0 when it is not a JDK).
jdk_version() {
    local home=$1 version
    [[ -x $home/bin/javac && -f $home/release ]] || { echo 0; return; }
    version=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$home/release")
    echo "${version:-0}"
}

find_java_home() {
    if [[ -n ${JAVA_HOME:-} && $(jdk_version "$JAVA_HOME") -ge $MIN_JAVA ]]; then
        echo "$JAVA_HOME"
        return 0
    fi
    local best="" best_version=0 home version
    for home in /usr/lib/jvm/*/; do
        home=${home%/}
        [[ -L $home ]] && continue
        version=$(jdk_version "$home")
        if ((version >= MIN_JAVA && version > best_version)); then
            best=$home
            best_version=$version
        fi
    done
    [[ -n $best ]] && echo "$best"
}

if [[ ${1:-} == --java-home ]]; then
    find_java_home || { echo "install-deps-java: no JDK >= $MIN_JAVA found (JAVA_HOME or /usr/lib/jvm)" >&2; exit 1; }
    exit 0
fi

if [[ $(id -u) -eq 0 ]]; then SUDO=""; else SUDO="sudo"; fi
need_apt=()
command -v mvn >/dev/null || need_apt+=(maven)
if ! find_java_home >/dev/null; then
    $SUDO apt-get update -qq
    jdk=$(apt-cache pkgnames openjdk- | grep -E '^openjdk-(2[2-9]|[3-9][0-9])-jdk-headless$' | sort -V | tail -1 || true)
    if [[ -z $jdk ]]; then
        echo "install-deps-java: the Java SDK needs a JDK >= $MIN_JAVA (Foreign Function & Memory API);" \
            "none is installed under /usr/lib/jvm and apt offers none. Install one and set JAVA_HOME." >&2
        exit 1
    fi
    need_apt+=("$jdk")
fi
if ((${#need_apt[@]})); then
    echo "install-deps-java: apt-get install ${need_apt[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
