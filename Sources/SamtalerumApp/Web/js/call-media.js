// This side's media for a call: camera and microphone, the "Vis ikke mit ansigt" choice and
// the shared screen. Call decides when to open it and what its senders carry.

const CAMERA = { width: { ideal: 1280 }, height: { ideal: 720 } };

export class LocalMedia {
  constructor() {
    this.stream = null;
    this.notice = null;       // 'noCamera' | 'noMedia' | 'cameraDenied' | 'permissionDenied' when we continue with less
    this.screenTrack = null;
    this.muted = false;
    this.cameraOff = false;
    this.audioOnly = false;
    this.cameraFound = false; // a camera was opened once: the camera buttons make sense
    this.cameraWork = Promise.resolve();
    this.stopped = false;     // the call is over: nothing opens again
  }

  get permissionDenied() { return this.notice === 'permissionDenied' || this.notice === 'cameraDenied'; }

  get hasCamera() { return this.cameraFound; }
  get hasMicrophone() { return (this.stream?.getAudioTracks().length ?? 0) > 0; }
  get sharingScreen() { return this.screenTrack !== null; }
  static get canShareScreen() { return Boolean(navigator.mediaDevices?.getDisplayMedia); }
  get wantsCamera() { return !this.audioOnly && !this.cameraOff; }

  /** Camera and microphone, else the microphone alone, else nothing: the call goes on. */
  async acquire() {
    if (this.stream) return;
    const devices = navigator.mediaDevices;
    if (!devices?.getUserMedia) {
      this.stream = new MediaStream();
      this.notice = 'noMedia';
      return;
    }
    try {
      this.stream = await devices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true },
        video: this.wantsCamera ? CAMERA : false,
      });
      // Without the camera now, a camera the device has can still be turned on later.
      this.cameraFound = this.stream.getVideoTracks().length > 0 || (!this.wantsCamera && await hasCameraDevice());
      this.applyEnabled();
      return;
    } catch (err) {
      console.warn('samtalerum: camera and microphone unavailable, trying microphone only', err);
      // The person (or the browser's settings) said no: the page explains how to allow it.
      if (err.name === 'NotAllowedError') this.notice = 'permissionDenied';
    }
    try {
      this.stream = await devices.getUserMedia({ audio: true });
      if (this.notice === 'permissionDenied') this.notice = 'cameraDenied'; // the microphone was allowed
      if (this.wantsCamera) this.notice ??= 'noCamera';
    } catch (err) {
      console.warn('samtalerum: microphone unavailable, continuing without local media', err);
      this.stream = new MediaStream();
      if (err.name === 'NotAllowedError') this.notice = 'permissionDenied';
      this.notice ??= 'noMedia';
    }
    this.applyEnabled();
  }

  /** "Prøv igen" after the person allowed the camera or microphone: asks for both anew. */
  async reacquire() {
    await this.cameraWork;
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = null;
    this.notice = null;
    await this.acquire();
  }

  /** Uses a stream the page already opened (the invite page's check), if any. */
  adopt(stream) {
    if (this.stream || !stream) return;
    this.stream = stream;
    this.cameraFound = stream.getVideoTracks().length > 0;
    if (!this.cameraFound) this.notice = this.hasMicrophone ? 'noCamera' : 'noMedia';
    this.applyEnabled();
  }

  setMuted(muted) {
    this.muted = muted;
    this.applyEnabled();
  }

  /**
   * "Slå kamera fra" and "Vis ikke mit ansigt" both release the camera (its light goes off):
   * nothing of it leaves the device, not even black frames. Turning it on again opens a new
   * camera track. Resolves once the camera is in the wanted state.
   */
  setCameraOff(off) {
    this.cameraOff = off;
    return this.syncCamera();
  }

  setAudioOnly(on) {
    this.audioOnly = on;
    return this.syncCamera();
  }

  /** One change at a time, so quick presses never leave two cameras open. */
  syncCamera() {
    this.cameraWork = this.cameraWork.then(() => this.applyCamera());
    return this.cameraWork;
  }

  async applyCamera() {
    if (!this.stream || this.stopped) return; // acquire() opens what is wanted
    const live = this.stream.getVideoTracks();
    if (!this.wantsCamera) {
      for (const track of live) {
        track.stop();
        this.stream.removeTrack(track);
      }
      return;
    }
    if (live.length || !this.cameraFound) return;
    try {
      const fresh = await navigator.mediaDevices.getUserMedia({ video: CAMERA });
      const [track] = fresh.getVideoTracks();
      // The person may have changed their mind, or hung up, while the camera was opening.
      if (!this.wantsCamera || this.stopped || this.stream.getVideoTracks().length) track?.stop();
      else if (track) this.stream.addTrack(track);
    } catch (err) {
      console.warn('samtalerum: the camera did not open again', err);
      this.notice = 'noCamera';
    }
  }

  applyEnabled() {
    for (const track of this.stream?.getAudioTracks() ?? []) track.enabled = !this.muted;
    if (this.stream && !this.wantsCamera) {
      for (const track of this.stream.getVideoTracks()) {
        track.stop();
        this.stream.removeTrack(track);
      }
    }
  }

  /** Resolves true once a screen (or window) is being captured; `onEnded` when it stops. */
  async startScreenShare(onEnded) {
    if (this.screenTrack || !LocalMedia.canShareScreen) return false;
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch (err) {
      console.warn('samtalerum: screen sharing not started', err);
      return false;
    }
    const [track] = stream.getVideoTracks();
    if (!track) return false;
    this.screenTrack = track;
    // The browser's own "stop sharing" button ends the track.
    track.addEventListener('ended', onEnded);
    return true;
  }

  stopScreenShare() {
    if (!this.screenTrack) return false;
    this.screenTrack.stop();
    this.screenTrack = null;
    return true;
  }

  sendsVideo() { return this.currentVideoTrack() !== null; }

  /** What the video sender should carry now: the screen, the camera, or nothing. */
  currentVideoTrack() {
    if (this.screenTrack) return this.screenTrack;
    if (!this.wantsCamera) return null;
    return this.stream?.getVideoTracks()[0] ?? null;
  }

  audioTrack() { return this.stream?.getAudioTracks()[0] ?? null; }

  stop() {
    this.stopped = true;
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stopScreenShare();
  }
}

async function hasCameraDevice() {
  try {
    return (await navigator.mediaDevices.enumerateDevices()).some((d) => d.kind === 'videoinput');
  } catch {
    return false;
  }
}
