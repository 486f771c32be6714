// Browser test of OpenID Connect sign-in: headless Debian chromium (playwright-core) walks the
// authorization code flow with PKCE and explicit consent on the server-rendered pages, the relying
// party (this script) redeems the code, then RP-initiated logout returns to the registered logout
// URI. Run by crates/portcullis/tests/ui.rs, which starts the server and sets:
//   PORTCULLIS_URL, PORTCULLIS_ADMIN_USERNAME, PORTCULLIS_ADMIN_PASSWORD, PORTCULLIS_ADMIN_TOKEN
//   (an API token of the superuser), PORTCULLIS_ARTIFACTS_DIR, PORTCULLIS_TEST_CHROMIUM (optional).
// The relying party (https://rp.example/...) does not exist: the test reads where the browser is
// sent (the request to the RP) and lets that navigation fail, so nothing reaches the network.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import * as jose from 'jose';

const STEP_TIMEOUT_MS = 10_000;
const BASE = (process.env.PORTCULLIS_URL || '').replace(/\/+$/, '');
const USERNAME = process.env.PORTCULLIS_ADMIN_USERNAME;
const PASSWORD = process.env.PORTCULLIS_ADMIN_PASSWORD;
const TOKEN = process.env.PORTCULLIS_ADMIN_TOKEN;
const CHROMIUM = process.env.PORTCULLIS_TEST_CHROMIUM || '/usr/bin/chromium';
const HERE = path.dirname(fileURLToPath(import.meta.url));
const SHOTS = path.join(process.env.PORTCULLIS_ARTIFACTS_DIR || path.join(HERE, '..', '..', 'artifacts'), 'ui');
const RP = 'https://rp.example';
const REDIRECT = `${RP}/callback`;
const LOGOUT = `${RP}/signed-out`;

let browser;

before(async () => {
    for (const [k, v] of Object.entries({ PORTCULLIS_URL: BASE, PORTCULLIS_ADMIN_USERNAME: USERNAME, PORTCULLIS_ADMIN_PASSWORD: PASSWORD, PORTCULLIS_ADMIN_TOKEN: TOKEN })) {
        if (!v) throw new Error(`${k} is not set: run this through scripts/test (crates/portcullis/tests/ui.rs)`);
    }
    fs.mkdirSync(SHOTS, { recursive: true });
    browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        timeout: 30_000,
        chromiumSandbox: false,
        args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--disable-background-networking'],
    });
});

after(async () => {
    await browser?.close();
});

async function api(method, p, body) {
    const r = await fetch(`${BASE}${p}`, {
        method,
        headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    assert.ok(r.status < 300, `${method} ${p}: ${r.status} ${text.slice(0, 300)}`);
    return text ? JSON.parse(text) : null;
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/** Logs in as the admin on the identification and password pages the browser is on. */
async function logIn(page) {
    await page.locator('input[name="uid_field"]').fill(USERNAME);
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.locator('button[type="submit"]').first().click()]);
    await page.locator('input[type="password"][name="password"]').fill(PASSWORD);
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.locator('button[type="submit"]').first().click()]);
}

/** The authorization URL of a code flow with PKCE; its verifier. */
function authorizeUrl(clientId, redirectUri, extra = {}) {
    const verifier = b64url(crypto.randomBytes(48));
    const challenge = b64url(crypto.createHash('sha256').update(verifier).digest());
    const url = new URL(`${BASE}/application/o/authorize/`);
    for (const [k, v] of Object.entries({
        client_id: clientId, redirect_uri: redirectUri, response_type: 'code', scope: 'openid email profile',
        code_challenge: challenge, code_challenge_method: 'S256', ...extra,
    })) url.searchParams.set(k, v);
    return { url: url.toString(), verifier };
}

/** The relying party redeems a code: the token response. */
async function redeem(provider, code, redirectUri, verifier) {
    const r = await fetch(`${BASE}/application/o/token/`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
            grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier,
            client_id: provider.client_id, client_secret: provider.client_secret,
        }),
    });
    const tokens = await r.json();
    assert.equal(r.status, 200, JSON.stringify(tokens));
    return tokens;
}

const jwtClaims = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());

test('code flow with PKCE and explicit consent, then RP-initiated logout', { timeout: 12 * STEP_TIMEOUT_MS }, async () => {
    // The provider and its application, as an admin would set them up.
    const flow = async (slug) => (await api('GET', `/api/v3/flows/instances/${slug}/`)).pk;
    const scopes = await api('GET', '/api/v3/propertymappings/provider/scope/?managed__isnull=false&page_size=100');
    const provider = await api('POST', '/api/v3/providers/oauth2/', {
        name: 'Browser RP',
        authorization_flow: await flow('default-provider-authorization-explicit-consent'),
        invalidation_flow: await flow('default-provider-invalidation-flow'),
        redirect_uris: [
            { matching_mode: 'strict', url: REDIRECT },
            { matching_mode: 'strict', url: LOGOUT, redirect_uri_type: 'logout' },
        ],
        property_mappings: scopes.results.map((m) => m.pk),
    });
    await api('POST', '/api/v3/core/applications/', { name: 'Browser RP', slug: 'browser-rp', provider: provider.pk });

    const context = await browser.newContext({ baseURL: BASE });
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
    context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
    const page = await context.newPage();
    /** Does `action` and returns the URL the browser was then sent to at the RP. */
    const sentTo = async (prefix, action) => {
        const [req] = await Promise.all([
            page.waitForRequest((r) => r.url().startsWith(prefix)),
            action().catch(() => null), // the RP's host does not resolve: that navigation fails
        ]);
        return new URL(req.url());
    };

    const state = b64url(crypto.randomBytes(12));
    const nonce = b64url(crypto.randomBytes(12));
    const authorize = authorizeUrl(provider.client_id, REDIRECT, { state, nonce });

    // Not logged in: the login pages first.
    await page.goto(authorize.url, { waitUntil: 'load' });
    await logIn(page);

    // The consent page names the application and what it asks for.
    const perms = page.locator('ul.perms li');
    await perms.first().waitFor({ state: 'visible' });
    const title = await page.locator('h1').first().innerText();
    assert.ok(title.includes('Browser RP') && !title.includes('%('), `the consent page's title is "${title}"`);
    const asked = await perms.allInnerTexts();
    assert.ok(asked.some((p) => /email/i.test(p)), `consent lists ${JSON.stringify(asked)}`);
    await page.screenshot({ path: path.join(SHOTS, 'oidc-01-consent.png'), fullPage: true });
    const back = await sentTo(REDIRECT, () => page.locator('button[type="submit"]').first().click());
    assert.equal(back.searchParams.get('state'), state);
    assert.equal(back.searchParams.get('iss'), `${BASE}/application/o/browser-rp/`);
    const code = back.searchParams.get('code');
    assert.ok(code, `no code in ${back}`);

    // The relying party redeems the code with its verifier.
    const tokens = await redeem(provider, code, REDIRECT, authorize.verifier);
    const claims = jwtClaims(tokens.id_token);
    assert.equal(claims.nonce, nonce);
    assert.equal(claims.aud, provider.client_id);
    assert.equal(claims.preferred_username, USERNAME);

    // RP-initiated logout: the invalidation flow, then back to the registered logout URI.
    const end = new URL(`${BASE}/application/o/browser-rp/end-session/`);
    end.searchParams.set('post_logout_redirect_uri', LOGOUT);
    end.searchParams.set('state', 'bye');
    const out = await sentTo(LOGOUT, () => page.goto(end.toString(), { waitUntil: 'load' }));
    assert.equal(out.searchParams.get('state'), 'bye');

    // An unregistered logout URI is refused on an error page, not followed.
    const evil = new URL(`${BASE}/application/o/browser-rp/end-session/`);
    evil.searchParams.set('post_logout_redirect_uri', 'https://evil.example/');
    const fresh = await context.newPage(); // the previous page is on the browser's error page
    const r = await fresh.goto(evil.toString(), { waitUntil: 'load' });
    assert.equal(r.status(), 400);
    assert.ok(fresh.url().startsWith(BASE), fresh.url());
    await fresh.screenshot({ path: path.join(SHOTS, 'oidc-02-unregistered-logout-uri.png'), fullPage: true });
    await context.close();
});

test('logging out loads each front-channel logout page in an iframe, then goes on', { timeout: 12 * STEP_TIMEOUT_MS }, async () => {
    // The application's front-channel logout endpoint: records each request.
    const hits = [];
    const server = http.createServer((req, res) => {
        hits.push(new URL(req.url, 'http://receiver'));
        res.writeHead(200, { 'Content-Type': 'text/html' });
        res.end('<!doctype html><title>signed out</title>');
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const receiver = `http://127.0.0.1:${server.address().port}/fc-logout?app=fc`;
    try {
        const flow = async (slug) => (await api('GET', `/api/v3/flows/instances/${slug}/`)).pk;
        const scopes = await api('GET', '/api/v3/propertymappings/provider/scope/?managed__isnull=false&page_size=100');
        const provider = await api('POST', '/api/v3/providers/oauth2/', {
            name: 'Front-channel RP',
            authorization_flow: await flow('default-provider-authorization-implicit-consent'),
            invalidation_flow: await flow('default-provider-invalidation-flow'),
            redirect_uris: [{ matching_mode: 'strict', url: REDIRECT }],
            property_mappings: scopes.results.map((m) => m.pk),
            logout_uri: receiver,
            logout_method: 'frontchannel',
        });
        await api('POST', '/api/v3/core/applications/', { name: 'Front-channel RP', slug: 'fc-rp', provider: provider.pk });

        const context = await browser.newContext({ baseURL: BASE });
        context.setDefaultTimeout(STEP_TIMEOUT_MS);
        context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
        const page = await context.newPage();
        const authorize = authorizeUrl(provider.client_id, REDIRECT, { nonce: 'n' });
        const [req] = await Promise.all([
            page.waitForRequest((r) => r.url().startsWith(REDIRECT)),
            (async () => {
                await page.goto(authorize.url, { waitUntil: 'load' });
                await logIn(page);
            })().catch(() => null), // the RP's host does not resolve: that navigation fails
        ]);
        const code = new URL(req.url()).searchParams.get('code');
        assert.ok(code, `no code in ${req.url()}`);
        const sid = jwtClaims((await redeem(provider, code, REDIRECT, authorize.verifier)).id_token).sid;
        assert.ok(sid);
        assert.equal(hits.length, 0);

        // The person logs out of Portcullis: the page frames the application's logout URL,
        // then goes on by itself to the end of the flow (the login page).
        // (A new tab: the first is on the browser's error page for the RP.)
        const tab = await context.newPage();
        // The receiver is loaded by a frame of the page (not by a navigation of the page itself).
        const framed = tab.waitForRequest((r) => r.url().startsWith(receiver.split('?')[0]));
        // Only until the first response: the page's script moves on by itself.
        await tab.goto('/flows/-/default/invalidation/', { waitUntil: 'commit' });
        const frameRequest = await framed;
        assert.notEqual(frameRequest.frame(), tab.mainFrame(), 'the logout URL was not loaded in an iframe');
        await tab.waitForURL((u) => u.pathname.startsWith('/if/flow/default-authentication-flow/'), { timeout: STEP_TIMEOUT_MS });
        await tab.locator('input[name="uid_field"]').waitFor({ state: 'visible' });
        assert.equal(hits.length, 1, `front-channel requests: ${hits.map(String)}`);
        assert.equal(hits[0].pathname, '/fc-logout');
        assert.equal(hits[0].searchParams.get('app'), 'fc');
        assert.equal(hits[0].searchParams.get('iss'), `${BASE}/application/o/fc-rp/`);
        assert.equal(hits[0].searchParams.get('sid'), sid);
        await tab.screenshot({ path: path.join(SHOTS, 'oidc-03-after-frontchannel-logout.png'), fullPage: true });

        // The Portcullis session is over: its cookie no longer authenticates the API.
        const r = await fetch(`${BASE}/api/v3/core/users/me/`, { headers: { Cookie: (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ') } });
        assert.notEqual(r.status, 200);
        await context.close();
    } finally {
        server.close();
    }
});

test('encrypted ID tokens decrypt with the encryption key and verify with the JWKS (jose)', { timeout: 6 * STEP_TIMEOUT_MS }, async () => {
    // An independent JOSE implementation (panva/jose) reads what Portcullis encrypts.
    const flow = async (slug) => (await api('GET', `/api/v3/flows/instances/${slug}/`)).pk;
    let made = 0;
    const generate = (alg) => api('POST', '/api/v3/crypto/certificatekeypairs/generate/', { common_name: `enc-test-${alg}-${made++}`, validity_days: 30, alg });
    const signing = await generate('ecdsa');
    const encryption = await generate('rsa');
    const scopes = await api('GET', '/api/v3/propertymappings/provider/scope/?managed__isnull=false&page_size=100');
    const provider = await api('POST', '/api/v3/providers/oauth2/', {
        name: 'Encrypted RP',
        authorization_flow: await flow('default-provider-authorization-implicit-consent'),
        invalidation_flow: await flow('default-provider-invalidation-flow'),
        redirect_uris: [{ matching_mode: 'strict', url: REDIRECT }],
        property_mappings: scopes.results.map((m) => m.pk),
        signing_key: signing.pk,
        encryption_key: encryption.pk,
    });
    await api('POST', '/api/v3/core/applications/', { name: 'Encrypted RP', slug: 'enc-rp', provider: provider.pk });

    const r = await fetch(`${BASE}/application/o/token/`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
            grant_type: 'client_credentials', scope: 'openid profile',
            client_id: provider.client_id, client_secret: provider.client_secret,
        }),
    });
    const tokens = await r.json();
    assert.equal(r.status, 200, JSON.stringify(tokens));

    const pem = (await api('GET', `/api/v3/crypto/certificatekeypairs/${encryption.pk}/view_private_key/`)).data;
    const privateKey = await jose.importPKCS8(pem, 'RSA-OAEP-256');
    const { plaintext, protectedHeader } = await jose.compactDecrypt(tokens.id_token, privateKey);
    assert.equal(protectedHeader.alg, 'RSA-OAEP-256');
    assert.equal(protectedHeader.enc, 'A256CBC-HS512');
    assert.equal(protectedHeader.cty, 'JWT');

    const jwks = await (await fetch(`${BASE}/application/o/enc-rp/jwks/`)).json();
    assert.ok(jwks.keys.some((k) => k.use === 'enc' && k.kid === protectedHeader.kid), JSON.stringify(jwks));
    const signingKeys = jose.createLocalJWKSet({ keys: jwks.keys.filter((k) => k.use === 'sig') });
    const { payload, protectedHeader: inner } = await jose.jwtVerify(new TextDecoder().decode(plaintext), signingKeys, {
        issuer: `${BASE}/application/o/enc-rp/`,
        audience: provider.client_id,
    });
    assert.equal(inner.alg, 'ES256');
    assert.equal(payload.preferred_username, 'ak-Encrypted RP-client_credentials');

    // Another key cannot decrypt it; a changed byte fails the tag.
    const other = await generate('rsa');
    const otherPem = (await api('GET', `/api/v3/crypto/certificatekeypairs/${other.pk}/view_private_key/`)).data;
    await assert.rejects(jose.compactDecrypt(tokens.id_token, await jose.importPKCS8(otherPem, 'RSA-OAEP-256')));
    const parts = tokens.id_token.split('.');
    const ct = Buffer.from(parts[3], 'base64url');
    ct[0] ^= 1;
    parts[3] = ct.toString('base64url');
    await assert.rejects(jose.compactDecrypt(parts.join('.'), privateKey));
});
