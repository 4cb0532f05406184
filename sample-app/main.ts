import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';
import { IN_MEMORY, loadConfig } from './config';
import { startTracing, traceHttpRequests } from './tracing';

/**
 * ROLE=api: the HTTP API; ROLE=worker: the message handlers, no HTTP; ROLE=all (default): both.
 * SIGTERM/SIGINT (docker stop, Ctrl-C) shut down gracefully: handlers stop taking messages,
 * in-flight ones finish and are acked, then the connections close.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const logger = new Logger('Main');
  if (config.amqpUrl === IN_MEMORY) {
    logger.warn(
      'No AMQP_URL: running on the in-memory broker (messages live in this process only, and are gone when it stops). ' +
        'To run on RabbitMQ: AMQP_URL=amqp://guest:guest@127.0.0.1:5672 npm run sample',
    );
  }
  // Before the app: the messaging module looks for a registered OpenTelemetry SDK when it starts.
  if (config.tracing) await startTracing();
  const module = AppModule.register(config);
  if (config.role === 'worker' && config.healthPort === undefined) {
    const app = await NestFactory.createApplicationContext(module, { abortOnError: false });
    app.enableShutdownHooks();
    await app.init();
    logger.log(`worker ready (${config.serviceName}, pid ${process.pid})`);
  } else if (config.role === 'worker') {
    // Only /health and /metrics: for the orchestrator's probes and Prometheus.
    const app = await NestFactory.create(module, { abortOnError: false });
    app.enableShutdownHooks();
    await app.listen(config.healthPort!);
    logger.log(`worker ready (${config.serviceName}, pid ${process.pid}), probes and metrics on :${config.healthPort}`);
  } else {
    const app = await NestFactory.create(module, { abortOnError: false });
    app.enableShutdownHooks();
    if (config.tracing) await traceHttpRequests(app);
    await app.listen(config.port);
    logger.log(`${config.role} ready on http://localhost:${config.port} (${config.serviceName}, pid ${process.pid})`);
  }
}

main().catch((error: unknown) => {
  new Logger('Main').error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
