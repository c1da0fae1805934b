# The flownode image: nothing but the static binary that `make image` builds on
# the host (no builder stage, no base image: nothing is pulled, so it builds
# where no registry is reachable). The build context is bin/image/.
FROM scratch
COPY flownode /flownode
# An empty directory owned by the node's user, so a fresh named volume mounted
# here is writable without a root entrypoint.
COPY --chown=65532:65532 data /data
USER 65532:65532
ENV FLOWNODE_DATA=/data FLOWNODE_HTTP=:8000 FLOWNODE_COAP=:5683
VOLUME /data
EXPOSE 8000/tcp 5683/udp
HEALTHCHECK --interval=5s --timeout=4s --start-period=20s --retries=3 CMD ["/flownode", "healthcheck"]
ENTRYPOINT ["/flownode"]
CMD ["run"]
