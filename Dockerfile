# The sample app (sample-app/) with the library it uses (lib/), built from this repository, on the
# stack the README recommends: Node 24, NestJS 12, nestjs-cls 7 (the versions of the second test
# leg, legs/nest12, whose lockfile it installs). One image for both services of
# docker-compose.yml: ROLE=api or ROLE=worker picks the part.
FROM node:24-slim

WORKDIR /app

# Dependencies first, so editing the sources does not reinstall them. The leg's manifest lists the
# sample's Nest 12 packages (the library's peers) next to its test tools.
COPY legs/nest12/package.json legs/nest12/package-lock.json ./
RUN npm ci --no-audit --no-fund

COPY tsconfig.json tsconfig.build.json ./
COPY lib ./lib
COPY sample-app ./sample-app
RUN npx tsc -p tsconfig.build.json

ENV NODE_ENV=production
USER node
EXPOSE 3000

# Exec form: node gets SIGTERM from `docker stop` / a scale-down and shuts down gracefully
# (enableShutdownHooks): handlers stop taking messages, in-flight ones finish and are acked.
CMD ["node", "dist/sample-app/main.js"]
