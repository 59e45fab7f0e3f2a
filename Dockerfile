# splitrail container image: a release build in the Rust image, copied into
# a slim Debian runtime that runs it as an unprivileged user.
#
#     docker build -t splitrail .
#     docker run --rm -p 6033:6033 -v "$PWD/my.toml:/etc/splitrail/splitrail.toml:ro" splitrail
#
# Built by docker-compose.yml / docker-compose.mariadb.yml (`build: .`).

FROM rust:1-bookworm AS build
WORKDIR /src

# Dependencies first, in their own layer: a change under src/ then rebuilds
# only splitrail itself. (Stub targets stand in for src/ here; if Cargo.toml
# ever names targets by path, create stubs for those too.)
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src

# The whole tree, not just src/: the code embeds files from elsewhere in it
# (config.rs includes proto-tests/lab.toml). .dockerignore keeps target/ out.
COPY . .
# COPY keeps the files' old timestamps, which can look older than the stub
# build above; touching them makes cargo rebuild splitrail for real.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    && cp target/release/splitrail /usr/local/bin/splitrail

FROM debian:bookworm-slim
# No packages to add: the binary links only libraries the base image has
# (glibc, libgcc_s, and zlib if flate2 linked it dynamically). No TLS yet,
# so no CA certificates either.
RUN useradd --system --user-group --uid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin splitrail \
    && mkdir -p /var/lib/splitrail \
    && chown splitrail:splitrail /var/lib/splitrail
# A directory the unprivileged user may write to, for files splitrail keeps
# relative to its working directory.
WORKDIR /var/lib/splitrail
COPY --from=build /usr/local/bin/splitrail /usr/local/bin/splitrail
# The compose labs' config as the default; mount your own over it.
COPY docker/splitrail.toml /etc/splitrail/splitrail.toml
# Numeric, so that a runtime (e.g. Kubernetes runAsNonRoot) can see it is
# not root without reading /etc/passwd.
USER 10001:10001
# 6033: the MySQL protocol. 6034: the admin endpoint (/health, /metrics,
# node commands; see docs/operations.md).
EXPOSE 6033 6034
ENV RUST_LOG=info
ENTRYPOINT ["/usr/local/bin/splitrail"]
CMD ["serve", "-c", "/etc/splitrail/splitrail.toml"]
