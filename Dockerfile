# One image for every demat service; the command picks the worker group.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bus ./bus
COPY schemas ./schemas
COPY workers ./workers
COPY connectors ./connectors
RUN pip install --no-cache-dir .
ENV DEMAT_VAR_DIR=/var/lib/demat
VOLUME ["/var/lib/demat"]
ENTRYPOINT ["demat"]
CMD ["worker", "intake", "router", "steps", "journal"]
