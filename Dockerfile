# syntax=docker/dockerfile:1
# The hpo image: the Ray head and worker nodes, the MLflow server and the dashboard all run it
# (see docker-compose.yml). Two stages: the first installs everything into a virtual
# environment; the final image copies only that environment onto a slim Python, runs as an
# unprivileged user, and carries no compilers or pip caches.
#
#   docker build -t hpo:latest .
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu -t hpo:cpu .

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
# A CUDA build of torch (CUDA 12.8 wheels bundle their runtime: the host needs only the NVIDIA
# driver and the container toolkit). Override TORCH_INDEX for another CUDA or the CPU build.
ARG TORCH_VERSION=2.9.1
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu128
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/hpo
ENV PATH=/opt/hpo/bin:$PATH
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"
COPY pyproject.toml README.md /src/
COPY hpo /src/hpo
COPY models /src/models
COPY cli /src/cli
COPY search_spaces /src/search_spaces
# Everything hpo needs at run time: the PostgreSQL driver and Ray for the cluster. The torch
# installed above satisfies hpo's torch requirement, so pip keeps it.
RUN pip install "/src[postgres,ray]" && rm -rf /src

FROM python:${PYTHON_VERSION}-slim
LABEL org.opencontainers.image.title="hpo" \
      org.opencontainers.image.description="hyperparameter optimisation for deep learning"
# /mlartifacts: MLflow's artifact store (docker-compose.yml mounts a named volume there,
# which takes this folder's owner, so that the unprivileged user can write models to it).
RUN groupadd --gid 1000 hpo && useradd --uid 1000 --gid hpo --create-home hpo \
    && mkdir -p /mlartifacts && chown hpo:hpo /mlartifacts
COPY --from=build /opt/hpo /opt/hpo
ENV PATH=/opt/hpo/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    RAY_USAGE_STATS_ENABLED=0
USER hpo
WORKDIR /home/hpo
EXPOSE 8080 5000 6379 10001
CMD ["hpo", "--help"]
