import { type CanActivate, Inject, Injectable } from '@nestjs/common';
import { TrackContext } from '../../lib';
import { APP_CONFIG, type AppConfig } from '../config';

/**
 * Admits an order of a tenant this deployment serves (TENANTS), or of none. The tenant is the
 * message's `x-track-tenant` item, set by the API from the HTTP `x-tenant` header, read here from
 * TrackContext: guards run inside the message's context. A refused order goes to the dead-letter
 * queue at once, as ForbiddenException.
 */
@Injectable()
export class TenantGuard implements CanActivate {
  constructor(
    private readonly track: TrackContext,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  canActivate(): boolean {
    const tenant = this.track.get('tenant');
    return tenant === undefined || this.config.tenants.includes(tenant);
  }
}
