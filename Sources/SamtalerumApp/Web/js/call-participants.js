// How the other participants appear on the call screen: their names, one video tile each,
// and the worker's list of those waiting to be let in.

import { text, texts } from './dom.js';

/**
 * Who a participant is, in words: the translated role ("Borger"), or as the subject of a
 * sentence ("Borgeren"). Guests are numbered when there are two, in peer-id order, so every
 * page (a guest's too, counting itself) numbers them alike.
 * @param {import('./call.js').Call} call
 */
export function peerName(call, id, role, { definite = false } = {}) {
  if (role === 'guest') {
    const guests = [...new Set([
      ...(call.role === 'guest' ? [call.peerId] : []),
      ...[...call.peers.values()].filter((p) => p.role === 'guest').map((p) => p.id),
      ...[...call.waitingPeers].filter(([, r]) => r === 'guest').map(([p]) => p),
    ])].sort();
    if (guests.length > 1 && guests.includes(id)) return texts.guestNumbered(guests.indexOf(id) + 1);
  }
  return text(`${definite ? 'rolesDefinite' : 'roles'}.${role}`);
}

/** "Borgeren og gæsten": only the first name starts the sentence. */
export function joinNames(names) {
  const [first, ...rest] = names;
  if (!rest.length) return first ?? '';
  const lower = rest.map((n) => n.toLocaleLowerCase());
  return `${[first, ...lower.slice(0, -1)].join(', ')} ${text('and')} ${lower.at(-1)}`;
}

/**
 * One tile per connection, in the order people joined. The first tile keeps the ids of the
 * one-to-one screen (`remote-video`, `remote-placeholder`); the others add their peer id.
 */
export function renderTiles(grid, call, tiles, playRemote) {
  for (const [id, tile] of tiles) {
    if (call.peers.has(id)) continue;
    tile.root.remove();
    tiles.delete(id);
  }
  let index = 0;
  for (const peer of call.peers.values()) {
    let tile = tiles.get(peer.id);
    if (!tile) {
      tile = createTile(peer.id);
      tiles.set(peer.id, tile);
      grid.append(tile.root);
    }
    const suffix = index === 0 ? '' : `-${peer.id}`;
    index += 1;
    tile.video.id = `remote-video${suffix}`;
    tile.placeholder.id = `remote-placeholder${suffix}`;
    const who = peerName(call, peer.id, peer.role);
    const whoDefinite = peerName(call, peer.id, peer.role, { definite: true });
    tile.label.textContent = who;
    tile.root.dataset.role = peer.role;
    tile.video.setAttribute('aria-label', texts.video.remote(who));
    if (tile.video.srcObject !== peer.remoteStream) {
      tile.video.srcObject = peer.remoteStream;
      playRemote(tile.video);
    }
    // The status line says how the call goes; a tile only explains its own missing picture
    // and sound. A picture that stopped after it had come was turned off on purpose.
    const hasVideo = peer.remoteStream.getVideoTracks().some((t) => !t.muted);
    peer.hadVideo ||= hasVideo;
    tile.placeholder.hidden = hasVideo;
    tile.root.dataset.video = hasVideo ? 'on' : (peer.hadVideo ? 'off' : 'none');
    if (!peer.connected) tile.placeholder.textContent = text('video.connecting');
    else tile.placeholder.textContent = (peer.hadVideo ? texts.video.remoteCameraOff : texts.video.remoteNoCamera)(whoDefinite);
    tile.note.hidden = !(peer.connected && !peer.sendsAudio);
    tile.note.textContent = texts.video.remoteNoMicrophone(whoDefinite);
  }
  grid.dataset.count = String(tiles.size);
}

function createTile(peerId) {
  const root = document.createElement('figure');
  root.className = 'tile';
  root.dataset.peer = peerId;
  const video = document.createElement('video');
  video.className = 'remote-video';
  video.autoplay = true;
  video.playsInline = true;
  const placeholder = document.createElement('p');
  placeholder.className = 'remote-placeholder';
  const label = document.createElement('figcaption');
  label.className = 'tile-label';
  const note = document.createElement('p');
  note.className = 'tile-note';
  note.id = `no-microphone-${peerId}`;
  root.append(video, placeholder, label, note);
  return { root, video, label, placeholder, note };
}

/**
 * One admit button per waiting participant. Buttons are kept, not redrawn, so keyboard
 * focus stays on them while the page updates. The citizen's is `admit-button`.
 */
export function renderAdmitList(list, call, items) {
  for (const [id, item] of items) {
    if (call.waitingPeers.has(id)) continue;
    item.remove();
    items.delete(id);
  }
  for (const [id, role] of call.waitingPeers) {
    let item = items.get(id);
    if (!item) {
      item = document.createElement('li');
      const line = document.createElement('p');
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'button primary huge';
      button.id = role === 'citizen' ? 'admit-button' : `admit-button-${id}`;
      button.dataset.peer = id;
      item.append(line, button);
      items.set(id, item);
      list.append(item);
    }
    const who = peerName(call, id, role, { definite: true });
    item.firstElementChild.textContent = texts.call.someoneWaiting(who);
    item.lastElementChild.textContent = texts.call.admitSomeone(who);
  }
}
