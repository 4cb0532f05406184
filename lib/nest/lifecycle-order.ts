import type { Type } from '@nestjs/common';
import type { ModulesContainer } from '@nestjs/core';

/**
 * Nest calls onModuleDestroy from the root module down and global modules last, so a database
 * module would close before our handlers finished draining. Nest has no public way to order
 * modules, so this is the one place that writes an internal: the module holding `provider` gets
 * the lowest `distance`, which Nest (11 and 12) sorts hooks by. Its onModuleDestroy (the drain)
 * then runs before any other module's, and its bootstrap (consuming) after every other module is
 * ready. Runs at instantiation, before Nest orders the hooks. The shutdown integration test
 * ("providers that close in their own onModuleDestroy") fails on either major if this stops working.
 */
export function drainBeforeOtherModules(modules: ModulesContainer, provider: Type<unknown>): void {
  for (const module of modules.values()) {
    if (module.providers.has(provider)) module.distance = -1;
  }
}
