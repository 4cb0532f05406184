# The sample app (sample-app/) with the library it uses (lib/), built from this repository.
# One image for both services of docker-compose.yml: ROLE=api or ROLE=worker picks the part.
FROM node:20-slim

WORKDIR /app

# Dependencies first, so editing the sources does not reinstall them. The sample needs the
# devDependencies too: Nest, nestjs-cls and Express are the library's peer dependencies.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

COPY tsconfig.json tsconfig.build.json ./
COPY lib ./lib
COPY sample-app ./sample-app
COPY scripts ./scripts
RUN npm run build

ENV NODE_ENV=production
USER node
EXPOSE 3000

# Exec form: node gets SIGTERM from `docker stop` / a scale-down and shuts down gracefully
# (enableShutdownHooks): handlers stop taking messages, in-flight ones finish and are acked.
CMD ["node", "dist/sample-app/main.js"]
