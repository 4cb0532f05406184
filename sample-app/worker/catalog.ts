import { UnprocessableEntityException } from '@nestjs/common';

/** Unit prices of what the shop sells. FLAKY stands for a product whose warehouse often times out. */
const PRICES: Record<string, number> = { WIDGET: 2.5, GADGET: 12, GIZMO: 99.9, FLAKY: 5 };

export function unitPrice(sku: string): number | undefined {
  return Object.prototype.hasOwnProperty.call(PRICES, sku) ? PRICES[sku] : undefined;
}

/**
 * Thrown for a SKU the catalog does not have; callers of request() see it as RpcRemoteError
 * 'UnknownSkuError' with status 422 (an HttpException's status travels with the error reply), which
 * the API's MessagingHttpExceptionFilter answers with.
 */
export class UnknownSkuError extends UnprocessableEntityException {
  constructor(sku: string) {
    super(`Unknown SKU "${sku}"`);
  }
}
