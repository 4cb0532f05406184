/** Unit prices of what the shop sells. FLAKY stands for a product whose warehouse often times out. */
const PRICES: Record<string, number> = { WIDGET: 2.5, GADGET: 12, GIZMO: 99.9, FLAKY: 5 };

export function unitPrice(sku: string): number | undefined {
  return Object.prototype.hasOwnProperty.call(PRICES, sku) ? PRICES[sku] : undefined;
}

/** Thrown for a SKU the catalog does not have; callers of request() see it as RpcRemoteError 'UnknownSkuError'. */
export class UnknownSkuError extends Error {
  constructor(sku: string) {
    super(`Unknown SKU "${sku}"`);
    this.name = 'UnknownSkuError';
  }
}
