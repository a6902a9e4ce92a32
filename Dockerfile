# syntax=docker/dockerfile:1

# Build stage: install everything, compile to dist/main.js and the web assets to dist/public.
# test/docker-build.e2e-spec.ts replays these steps for real (no Docker engine needed).
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY libs/protocol/package.json ./libs/protocol/
COPY libs/client/package.json ./libs/client/
COPY libs/nest/package.json ./libs/nest/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json nest-cli.json webpack.config.js ./
COPY scripts ./scripts
COPY src ./src
COPY libs ./libs
RUN npm run build

# Runtime stage: production dependencies and the bundle only, as an unprivileged user.
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# The workspace packages are compiled into dist/main.js; their manifests only keep npm ci whole.
COPY libs/protocol/package.json ./libs/protocol/
COPY libs/client/package.json ./libs/client/
COPY libs/nest/package.json ./libs/nest/
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD node -e "require('http').get('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/live',r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"
STOPSIGNAL SIGTERM
CMD ["node", "dist/main.js"]
