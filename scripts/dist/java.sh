#!/usr/bin/env bash
# The Java SDK's release artifacts (issue 19), as Maven Central would receive them:
#
#   scripts/dist/java.sh OUT
#
# writes OUT/maven/io/rapidmq/rapidmq/<version>/ (a Maven repository layout: the jar with the
# stripped release native library under native/<os>-<arch>/, the sources jar, the javadoc jar,
# the pom and their .md5/.sha1 checksums) with `mvn -Prelease deploy` to a file repository, and
# copies the three jars to OUT/ for the release page. tests/dist/java.sh installs from
# OUT/maven the way a user does.
#
# JAVA_HOME must be a JDK 22 or newer (mk/java.mk's JAVA_ENV sets it, with MAVEN_OPTS and
# UNIFFI_BINDGEN_JAVA). DIST_PROFILE picks the cargo profile of the native library (release by
# default); MVN_FLAGS replaces the default Maven flags. Signing stays off (the pom's gpg.skip);
# a release workflow with a key adds -Dgpg.skip=false through MVN_FLAGS.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${1:?usage: scripts/dist/java.sh OUT}
: "${JAVA_HOME:?JAVA_HOME must point at a JDK 22 or newer (see mk/java.mk JAVA_ENV)}"
profile=${DIST_PROFILE:-release}
read -r -a mvn_flags <<<"${MVN_FLAGS:--B --no-transfer-progress -q -Dstyle.color=never}"

mkdir -p "$out"
out=$(cd "$out" && pwd)
version=$("$root/scripts/dist/version.sh")
repo=$out/maven
artifacts=$repo/io/rapidmq/rapidmq/$version
rm -rf "$artifacts"

start=$SECONDS
echo "java: io.rapidmq:rapidmq:$version with the $profile native library (JDK $JAVA_HOME)"
# clean: the sdk-java target dir may hold a dev build's classes and library. install is skipped
# so that ~/.m2 keeps what `make java` put there.
RAPIDMQ_CARGO_PROFILE=$profile mvn "${mvn_flags[@]}" -f "$root/sdk-java/pom.xml" -Prelease \
    clean deploy -DskipTests -Dmaven.install.skip=true \
    "-DaltDeploymentRepository=local::file://$repo"

for kind in "" -sources -javadoc; do
    jar=$artifacts/rapidmq-$version$kind.jar
    [[ -f $jar ]] || { echo "java: $jar was not produced" >&2; exit 1; }
    cp "$jar" "$out/"
done
[[ -f $artifacts/rapidmq-$version.pom ]] || { echo "java: the pom was not deployed" >&2; exit 1; }
native=$("$JAVA_HOME/bin/jar" tf "$out/rapidmq-$version.jar" | grep '^native/.*[^/]$' || true)
[[ -n $native ]] || { echo "java: the jar carries no native library" >&2; exit 1; }

echo "java: native libraries in the jar: $(echo "$native" | tr '\n' ' ')"
for kind in "" -sources -javadoc; do
    echo "java: $out/rapidmq-$version$kind.jar $(du -h "$out/rapidmq-$version$kind.jar" | cut -f1)"
done
echo "java: Maven repository at $repo ($((SECONDS - start)) s)"
