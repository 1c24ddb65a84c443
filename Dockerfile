# event-handler container: a Swift 6 toolchain stage builds the release binary with the same
# script `make run` and CI use (scripts/build-release.sh); a slim Swift runtime stage runs it as a
# non-root user with only the runtime libraries it links (libpq5, librdkafka1, libhiredis0.14).
#
#   docker build -t event-handler .
#   docker run --env-file .env -p 6565:6565 -p 8080:8080 event-handler
ARG SWIFT_VERSION=6.3

FROM swift:${SWIFT_VERSION}-bookworm AS build
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends libpq-dev librdkafka-dev libhiredis-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so a source change does not refetch them.
COPY Package.swift ./
RUN swift package resolve
COPY Sources Sources
# The test-support targets are declared with paths under Tests/: SwiftPM loads every target of
# the package, so their sources must be there even though the image builds only the service.
COPY Tests Tests
COPY scripts scripts
RUN scripts/build-release.sh event-handler \
 && install -D "$(swift build -c release --show-bin-path)/event-handler" /out/event-handler

FROM swift:${SWIFT_VERSION}-bookworm-slim
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends libpq5 librdkafka1 libhiredis0.14 curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin eventhandler
WORKDIR /app
COPY --from=build /out/event-handler /usr/local/bin/event-handler
COPY config/challenges.json config/challenges.json
USER eventhandler
ENV CONFIG_PATH=/app/config/challenges.json \
    GRPC_HOST=0.0.0.0 GRPC_PORT=6565 \
    METRICS_HOST=0.0.0.0 METRICS_PORT=8080
# gRPC (the event bridge) and HTTP (/metrics, /healthz, /readyz).
EXPOSE 6565 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
# SIGTERM drains within SHUTDOWN_TIMEOUT; give docker's stop at least as long.
STOPSIGNAL SIGTERM
ENTRYPOINT ["event-handler"]
CMD ["serve"]
