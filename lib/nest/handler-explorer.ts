import { Injectable } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { MESSAGE_HANDLER_METADATA } from '../messaging.constants';
import type { MessageHandlerOptions } from '../interfaces/message-handler-options.interface';
import { type InstanceWrapper, isAliasWrapper, isStaticDependencyTree } from './nest-internals';

/** A decorated method as found in the app, before its options are resolved. */
export interface DiscoveredHandler {
  name: string;
  options: MessageHandlerOptions;
  methodName: string;
  wrapper: InstanceWrapper;
  /** The handler's class, where its enhancer and parameter metadata are read. */
  classRef: object;
  /** False when the class or one of its dependencies is request-scoped (or durable). */
  isStatic: boolean;
}

/** What the app has: its handlers, and every class (with the classes it extends) of its providers and controllers. */
export interface Exploration {
  handlers: DiscoveredHandler[];
  classes: Set<object>;
}

/** Finds every @MessageHandler method on the app's providers and controllers, once, at bootstrap. */
@Injectable()
export class HandlerExplorer {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
  ) {}

  explore(): Exploration {
    const found: DiscoveredHandler[] = [];
    const seen = new Set<object>();
    const classes = new Set<object>();
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      if (isAliasWrapper(wrapper)) continue;
      const isStatic = isStaticDependencyTree(wrapper);
      const prototype: object | undefined =
        isStatic && wrapper.instance
          ? Object.getPrototypeOf(wrapper.instance)
          : (wrapper.metatype as { prototype?: object } | null)?.prototype;
      if (!prototype) continue;
      // A handler inherited from a base class is the subclass's: the base class counts as had.
      for (let p: object | null = prototype; p && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) {
        classes.add(p.constructor);
      }
      // The same class exported through several modules is one set of handlers.
      const identity = isStatic ? (wrapper.instance as object) : (wrapper.metatype as object);
      if (seen.has(identity)) continue;
      seen.add(identity);
      for (const methodName of this.scanner.getAllMethodNames(prototype)) {
        const method = (prototype as Record<string, unknown>)[methodName];
        if (typeof method !== 'function') continue;
        const list: MessageHandlerOptions[] | undefined = Reflect.getMetadata(MESSAGE_HANDLER_METADATA, method);
        for (const options of list ?? []) {
          const className = (wrapper.metatype as { name?: string } | null)?.name ?? String(wrapper.name);
          found.push({ name: `${className}.${methodName}`, options, methodName, wrapper, classRef: prototype.constructor, isStatic });
        }
      }
    }
    return { handlers: found, classes };
  }
}
