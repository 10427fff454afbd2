# kelp: one small image with the kelp binary; every role is a command of it.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin kelp && strip target/release/kelp

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --create-home kelp
COPY --from=build /src/target/release/kelp /usr/local/bin/kelp
USER kelp
WORKDIR /data
VOLUME ["/data"]
EXPOSE 9333 8080 8888 8333
ENTRYPOINT ["kelp"]
# On 0.0.0.0 kelp refuses to start without a security setup and the S3 gateway without
# an identity, so give them (docs/security.md):
#   docker run -e KELP_JWT_SIGNING_KEY="$(openssl rand -base64 48)" \
#     -e AWS_ACCESS_KEY_ID=admin -e AWS_SECRET_ACCESS_KEY="$(openssl rand -base64 30)" \
#     -p 8333:8333 -v kelp:/data kelp
# or mount a security file and add -security=/etc/kelp/security.toml.
CMD ["server", "-dir=/data", "-ip=0.0.0.0"]
