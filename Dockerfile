# Valuetree: one image for the web server, the Celery worker and beat (compose.yaml).
# Build: docker build -t valuetree .   Needs only PyPI and Debian's mirrors.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATA_DIR=/data \
    STATIC_ROOT=/app/staticfiles \
    COLLECTSTATIC=0 \
    PORT=8000

WORKDIR /app
RUN useradd --system --home-dir /app --shell /usr/sbin/nologin valuetree \
    && mkdir -p /data \
    && chown valuetree /data

# Dependencies first (a layer that changes only with pyproject.toml), then the code,
# which runs from /app as it does from a checkout.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt
COPY . .

# Static files are collected once, here (hashed names, gzip), and served by whitenoise.
# Placeholder secrets: this step only reads settings; real ones come at run time.
RUN DEBUG=0 SECRET_KEY=build-only CREDENTIALS_KEYS=YnVpbGQtb25seS1wbGFjZWhvbGRlci1rZXktMDAwMDA= \
    DATA_DIR=/tmp/build-data python manage.py collectstatic --noinput -v 0 \
    && rm -rf /tmp/build-data

USER valuetree
VOLUME ["/data"]
EXPOSE 8000
CMD ["scripts/serve", "web"]
