/**
 * Play the payer in a test: complete (or cancel) a payment behind a link, the way a person in a
 * browser would, using only HTTP. Knows the stand-ins' checkout pages and the public form of a
 * hosted pay page (one `<form method="post">` per method with a `method` field); nothing else
 * of the product.
 */

export interface SandboxPayOptions {
  /**
   * On a hosted pay page offering several methods, the one to choose (a provider id such as
   * `stripe`). Default: the first one the page offers (the primary button).
   */
  method?: string;
  /** Press Pay (default) or Cancel on the checkout page. */
  outcome?: 'pay' | 'cancel';
  /**
   * After the checkout page, follow its redirect back to the site (Stripe's `success_url` /
   * `cancel_url`, e.g. payrouter's return page), as a browser does. Default false.
   */
  followReturn?: boolean;
}

export interface SandboxPayResult {
  /** The stand-in checkout page that was paid or cancelled. */
  checkoutUrl: string;
  /** Where the checkout page sent the browser afterwards, if anywhere. */
  returnUrl?: string;
}

const CHECKOUT_PATH = /^\/checkout\/[^/]+$/;
const METHOD_FIELD = /<input[^>]*\bname="method"[^>]*\bvalue="([^"]+)"/;

export async function payThroughLink(
  link: string,
  checkoutOrigins: readonly string[],
  options: SandboxPayOptions = {},
): Promise<SandboxPayResult> {
  const url = parseUrl(link);
  const isCheckout = (u: URL) => checkoutOrigins.includes(u.origin) && CHECKOUT_PATH.test(u.pathname);
  const checkout = isCheckout(url) ? url : await chooseMethod(url, options.method, isCheckout);

  const outcome = options.outcome ?? 'pay';
  const pressed = await fetch(`${checkout.origin}${checkout.pathname}/${outcome}`, {
    method: 'POST',
    redirect: 'manual',
  });
  await pressed.arrayBuffer();
  if (pressed.status >= 400) {
    throw new Error(`sandbox.pay: ${outcome} at ${checkout.href} failed with HTTP ${pressed.status}`);
  }
  const location = pressed.headers.get('location');
  const back = location === null ? undefined : new URL(location, checkout);
  const returnUrl = back === undefined || back.origin === checkout.origin ? undefined : back.href;
  if (returnUrl !== undefined && options.followReturn === true) {
    const landed = await fetch(returnUrl, { redirect: 'manual' });
    await landed.arrayBuffer();
  }
  return { checkoutUrl: checkout.href, ...(returnUrl === undefined ? {} : { returnUrl }) };
}

/** On a hosted pay page: choose a method and follow the redirect to the stand-in's checkout page. */
async function chooseMethod(
  page: URL,
  wanted: string | undefined,
  isCheckout: (u: URL) => boolean,
): Promise<URL> {
  let method = wanted;
  if (method === undefined) {
    const shown = await fetch(page, { redirect: 'manual' });
    const html = await shown.text();
    // A link whose method is settled (chosen in the chat, or the only one) goes straight to the checkout.
    const location = shown.headers.get('location');
    const onward = location === null ? undefined : new URL(location, page);
    if (shown.status >= 300 && shown.status < 400 && onward !== undefined && isCheckout(onward))
      return onward;
    if (shown.status !== 200) throw new Error(`sandbox.pay: ${page.href} answered HTTP ${shown.status}`);
    method = METHOD_FIELD.exec(html)?.[1];
    if (method === undefined) {
      throw new Error(
        `sandbox.pay: ${page.href} offers no payment method (already paid, expired or canceled?)`,
      );
    }
  }
  const chosen = await fetch(page, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ method }).toString(),
    redirect: 'manual',
  });
  await chosen.arrayBuffer();
  const location = chosen.headers.get('location');
  const next = location === null ? undefined : new URL(location, page);
  if (next === undefined || !isCheckout(next)) {
    throw new Error(
      `sandbox.pay: choosing "${method}" at ${page.href} did not lead to a sandbox checkout page (HTTP ${chosen.status}${next === undefined ? '' : `, to ${next.href}`})`,
    );
  }
  return next;
}

function parseUrl(link: string): URL {
  if (typeof link !== 'string' || !URL.canParse(link)) {
    throw new TypeError(
      `sandbox.pay needs an absolute http(s) URL, got ${JSON.stringify(String(link)).slice(0, 80)}`,
    );
  }
  const url = new URL(link);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`sandbox.pay needs an http(s) URL, got ${url.protocol}`);
  }
  return url;
}
