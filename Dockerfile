# The graphflags service image, for docker-compose.yml. `make run` needs none of this.
FROM python:3.11-slim
WORKDIR /srv/graphflags
COPY pyproject.toml README.md ./
COPY app ./app
COPY cypher ./cypher
RUN pip install --no-cache-dir . && useradd --system graphflags && mkdir /keys && chown graphflags /keys
COPY flags.json /srv/flags.json
USER graphflags
ENV GRAPHFLAGS_HOST=0.0.0.0 \
    GRAPHFLAGS_FLAGS_FILE=/srv/flags.json \
    GRAPHFLAGS_JWT_DEV_KEY_FILE=/keys/dev-jwt.key
EXPOSE 8080
CMD ["graphflags", "serve"]
