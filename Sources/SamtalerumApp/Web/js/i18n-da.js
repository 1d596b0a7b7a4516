// Every text a person sees, in one place, so a later translation or a citizen-first rewording
// touches only this file. Short sentences, everyday words: many users have reading difficulties.

export const texts = {
  appName: 'Samtalerum',
  languageName: 'Dansk',

  // Call states, shown in the status line.
  status: {
    idle: '',
    checking: 'Tjekker linket …',
    ready: 'Klar. Tryk på Deltag, når du er klar.',
    media: 'Starter kamera og mikrofon …',
    connecting: 'Forbinder …',
    waitingRoom: 'Du er i venteværelset.',
    waiting: 'Venter på den anden deltager …',
    citizenWaiting: 'Borgeren venter på at komme ind.',
    negotiating: 'Den anden deltager er her. Forbinder …',
    connected: 'I forbindelse',
    peerLeft: 'Den anden deltager har forladt samtalen. Du kan vente her, eller lægge på.',
    peerLost: 'Den anden deltagers forbindelse blev afbrudt. Vent lidt, så kommer de måske tilbage.',
    reconnecting: 'Forbindelsen blev afbrudt — vi prøver igen …',
    ended: 'Samtalen er slut. Du kan lukke vinduet nu.',
    failed: 'Forbindelsen virker ikke lige nu.',
  },

  // Friendly texts for the server's stable error codes (Docs/PROTOCOL.md).
  errors: {
    inviteInvalid: 'Linket virker ikke. Det kan være for gammelt eller skrevet forkert. Bed din medarbejder om et nyt link.',
    meetingEnded: 'Mødet er slut, eller linket er udløbet. Bed din medarbejder om et nyt link.',
    roomFull: 'Du er allerede med i mødet i et andet vindue eller på en anden enhed.',
    signInAgain: 'Du er ikke længere logget ind. Log ind igen.',
    notYourMeeting: 'Du har ikke adgang til dette møde.',
    roleNotAllowed: 'Din rolle kan ikke deltage i samtaler.',
    server: 'Der skete en fejl hos os. Prøv igen om lidt.',
    connectionLost: 'Forbindelsen blev afbrudt. Prøv igen.',
    noMedia: 'Vi kan ikke bruge dit kamera eller din mikrofon. Du kan stadig se og høre den anden.',
    noCamera: 'Vi kan ikke bruge dit kamera. Samtalen fortsætter kun med lyd.',
    autoplay: 'Tryk her for at høre og se den anden deltager',
  },

  controls: {
    join: 'Deltag',
    hangUp: 'Læg på',
    muteOn: 'Slå lyd fra',
    muteOff: 'Slå lyd til',
    cameraOn: 'Slå kamera fra',
    cameraOff: 'Slå kamera til',
    retry: 'Prøv igen',
    audioOnly: 'Vis ikke mit ansigt',
    showFace: 'Vis mit ansigt igen',
    share: 'Vis min skærm',
    stopShare: 'Stop skærmdeling',
  },

  call: {
    reconnecting: 'Forbindelsen blev afbrudt — vi prøver igen … Du skal ikke gøre noget.',
    citizenReconnecting: 'Borgerens forbindelse blev afbrudt. Borgeren genopretter forbindelsen …',
    workerReconnecting: 'Din medarbejders forbindelse blev afbrudt. Medarbejderen genopretter forbindelsen …',
    waitingRoomTitle: 'Din medarbejder lukker dig ind om lidt',
    waitingRoomText: 'Du kan roligt vente her. Kun din medarbejder kan se, at du er her.',
    notesTitle: 'Besked fra din medarbejder',
    citizenWaiting: 'Borgeren venter',
    admit: 'Lad borgeren komme ind',
    noteLabel: 'Kort besked til borgeren (valgfri)',
    noteHelp: 'For eksempel: Jeg er 5 minutter forsinket. Beskeden gemmes ikke.',
    noteSend: 'Send besked',
    noteSent: (note) => `Sendt: ${note}`,
    notifyTitle: 'Borgeren venter',
    notifyBody: 'Borgeren er i venteværelset. Åbn Samtalerum for at lukke borgeren ind.',
    endedTitle: 'Mødet er slut',
    endedText: 'Tak for samtalen. Du kan lukke vinduet nu.',
  },

  quality: {
    excellent: 'Forbindelse: Meget god',
    good: 'Forbindelse: God',
    poor: 'Forbindelse: Svag',
    lost: 'Forbindelse: Afbrudt',
    hints: {
      'try-audio-only': 'Billedet hakker. Prøv at trykke på »Vis ikke mit ansigt«, så lyden bliver bedre.',
      'weak-connection': 'Din internetforbindelse er svag. Gå tættere på din router, eller luk andre programmer.',
      'peer-weak-connection': 'Den anden deltagers forbindelse er svag. Det er ikke din skyld.',
      reconnecting: 'Forbindelsen genoprettes. Vent et øjeblik.',
    },
  },

  chat: {
    title: 'Beskeder',
    label: 'Skriv en besked',
    placeholder: 'Skriv en besked …',
    send: 'Send',
    notStored: 'Beskederne gemmes ikke. De forsvinder, når samtalen slutter.',
    me: 'Dig',
    peer: 'Den anden',
    from: { worker: 'Medarbejder', citizen: 'Borger' },
  },

  video: {
    remote: 'Den anden deltager',
    local: 'Dig selv',
    remoteCameraOff: 'Den anden deltager har ikke kamera tændt',
  },

  join: {
    title: 'Velkommen til samtalen',
    intro: 'Tryk på knappen for at komme ind i samtalen med din medarbejder.',
    privacy: 'Kun du og din medarbejder er i samtalen. Du kan slå kameraet fra, når du er med.',
    missing: 'Linket mangler en del. Prøv at åbne linket fra beskeden igen.',
    permission: 'Din browser spørger, om Samtalerum må bruge kamera og mikrofon — tryk »Tillad«.',
    audioOnly: 'Vis ikke mit ansigt (kun lyd)',
    checkFirst: 'Tjek kamera, lyd og internet først',
  },

  check: {
    title: 'Test dit udstyr',
    intro: 'Her kan du prøve kamera, mikrofon, højttaler og internet, før du skal i samtale.',
    start: 'Start testen',
    again: 'Test igen',
    running: 'Vi tester … Det tager et par sekunder.',
    pending: '… tester',
    ok: '✓ Virker',
    failed: '✗ Virker ikke',
    micLevel: 'Mikrofon: sig noget, så bjælken bevæger sig',
    cameraHidden: 'Dit ansigt vises ikke. Kameraet er tjekket uden billede.',
    playSound: 'Afspil en testlyd',
    soundPlayed: 'Kunne du høre to toner? Ellers skru op for lyden.',
    items: {
      camera: 'Kamera',
      microphone: 'Mikrofon',
      signalling: 'Forbindelse til Samtalerum',
      udp: 'Video-forbindelse (UDP)',
      tcp: 'Video-forbindelse (TCP)',
      tls: 'Video-forbindelse (sikker TCP)',
    },
    allGood: 'Alt virker.',
    someProblems: 'Noget virker ikke. Sådan kan du gøre:',
    advice: {
      camera: 'Kameraet virker ikke: luk andre programmer, der bruger kameraet, og giv browseren lov. Du kan også deltage kun med lyd.',
      microphone: 'Mikrofonen virker ikke: tjek at den er sat til, og giv browseren lov til at bruge den.',
      signalling: 'Vi kan ikke nå Samtalerum: tjek at du er på internettet, og prøv igen.',
      blocked: 'Dit netværk blokerer videosamtaler: prøv et andet netværk, for eksempel mobildata, eller ring til din medarbejder.',
      noUdp: 'Det virker, men forbindelsen kan blive lidt langsommere på dette netværk.',
    },
  },

  worker: {
    title: 'Samtalerum for medarbejdere',
    signInTitle: 'Log ind',
    tokenLabel: 'Dit adgangstoken',
    tokenHelp: 'Indsæt det token, du har fået. Det gemmes kun i dette faneblad.',
    signIn: 'Log ind',
    signOut: 'Log ud',
    signedInAs: (subject) => `Logget ind som ${subject}`,
    tokenRejected: 'Tokenet virker ikke. Tjek at du har kopieret det hele.',
    notWorker: 'Dette token er ikke til en medarbejder.',
    createTitle: 'Nyt møde',
    citizenRefLabel: 'Borgerens sagsnummer',
    citizenRefHelp: 'Bruges kun til journalen. Borgeren ser det ikke.',
    create: 'Opret møde',
    creating: 'Opretter …',
    createFailed: 'Mødet kunne ikke oprettes.',
    inviteTitle: 'Link til borgeren',
    inviteHelp: 'Send linket til borgeren. Linket er personligt og virker kun til dette møde.',
    copy: 'Kopiér link',
    copied: 'Linket er kopieret.',
    copyFailed: 'Kunne ikke kopiere. Markér linket og kopiér det selv.',
    expires: (when) => `Linket virker til ${when}.`,
    joinMeeting: 'Deltag i mødet',
    meetingLabel: (id) => `Møde ${id}`,
    back: 'Tilbage til forsiden',
    meetingExpired: 'Mødet er udløbet. Opret et nyt møde.',
  },

  ops: {
    title: 'Drift',
    signInTitle: 'Log ind til driftsoverblikket',
    tokenLabel: 'Driftens adgangstoken',
    tokenRejected: 'Tokenet virker ikke her. Det skal være et drifts-token (rolle ops).',
    liveTitle: 'Samtaler lige nu',
    caption: 'Aktive møder. Kun mødenumre og roller vises — ingen navne eller adresser.',
    loading: 'Henter …',
    live: 'Opdateres løbende (hvert 2. sekund).',
    polling: 'Opdateres hvert 2. sekund (reserveforbindelse).',
    stale: 'Ingen nye tal i over 5 sekunder — forbindelsen til serveren prøves igen.',
    none: 'Ingen møder lige nu.',
    health: ({ connections, rooms, allocations, memory, at }) =>
      `Server: ${connections} forbindelser · ${rooms} møderum · ${allocations} relay-allokeringer · hukommelse ${memory} · kl. ${at}`,
    col: { meeting: 'Møde', state: 'Tilstand', duration: 'Varighed', interruptions: 'Afbrydelser', worker: 'Medarbejder', citizen: 'Borger' },
    state: { waiting: 'Venter', 'in-call': 'I samtale', reconnecting: 'Genopretter' },
    absent: 'Ikke med',
    present: 'Forbundet',
    waiting: 'I venteværelset',
    away: 'Forbindelsen tabt',
    loss: 'tab',
    relayed: 'Via relay',
    direct: 'Direkte',
  },

  landing: {
    title: 'Samtalerum',
    intro: 'Sikre videosamtaler mellem borgere og medarbejdere.',
    citizen: 'Er du borger? Brug det link, du har fået af din medarbejder.',
    workerLink: 'Til medarbejdere',
    testLink: 'Test dit kamera, din mikrofon og dit internet',
  },
};

/** Danish date and time, e.g. "26. november 2026 kl. 14.00". */
export function formatDateTime(date) {
  const day = new Intl.DateTimeFormat('da-DK', { day: 'numeric', month: 'long', year: 'numeric' }).format(date);
  const time = new Intl.DateTimeFormat('da-DK', { hour: '2-digit', minute: '2-digit' }).format(date);
  return `${day} kl. ${time}`;
}
