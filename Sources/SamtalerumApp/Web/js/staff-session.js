// Sign-in through the municipality's identity provider for the staff pages (/worker, /ops,
// /auditor). The server runs the OpenID Connect flow and keeps the session; the page only
// sees an HttpOnly cookie it cannot read, so it asks the server who is signed in. Without an
// identity provider (development) the pages keep their token field instead.

/** Whether this server signs staff in through an identity provider. */
export async function identityProviderConfigured() {
  try {
    const response = await fetch('/auth/methods', { cache: 'no-store' });
    return response.ok && (await response.json()).identityProvider === true;
  } catch {
    return false;
  }
}

/** Who the session cookie belongs to ({subject, role, expiresAt}), or null. */
export async function sessionIdentity() {
  try {
    const response = await fetch('/api/whoami', { cache: 'no-store', credentials: 'same-origin' });
    return response.ok ? await response.json() : null;
  } catch {
    return null;
  }
}

/**
 * Replaces the token form in `view` with one button to the identity provider, which brings
 * the person back to `next`. The token form stays in the page, hidden: for development only.
 */
export function mountIdentityProviderButton(view, { next, label }) {
  const form = view.querySelector('form');
  if (form) form.hidden = true;
  if (view.querySelector('#idp-sign-in')) return;
  const link = document.createElement('a');
  link.id = 'idp-sign-in';
  link.className = 'button primary huge';
  link.href = `/auth/login?next=${encodeURIComponent(next)}`;
  link.textContent = label;
  (form ?? view.lastElementChild).before(link);
  // The form's error line must stay visible: it now tells why an IdP sign-in did not work.
  const error = form?.querySelector('.error-message');
  if (error) link.before(error);
}

/**
 * Why a sign-in came back without a session (`#signin-error=…` from the server), once: the
 * fragment is cleared so a reload does not repeat it. One of 'denied', 'expired', 'unavailable'.
 */
export function takeSignInError() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ''));
  const code = params.get('signin-error');
  if (code) history.replaceState(null, '', location.pathname + location.search);
  return code;
}

/** Ends the session here and, when the IdP offers it, there too. */
export async function endSession(next) {
  let redirect = next;
  try {
    const response = await fetch(`/auth/logout?next=${encodeURIComponent(next)}`, { method: 'POST', cache: 'no-store' });
    if (response.ok) redirect = (await response.json()).redirect ?? next;
  } catch { /* signed out locally all the same */ }
  location.assign(redirect);
}

/** A short staff token for the signalling `hello`, fetched for each connection. */
export async function signallingTicket() {
  const response = await fetch('/auth/ticket', { method: 'POST', cache: 'no-store' });
  if (!response.ok) return null;
  return (await response.json()).token ?? null;
}
