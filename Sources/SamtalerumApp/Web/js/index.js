// The landing page has no logic of its own; it only needs its words.
import { applyTexts } from './dom.js';

applyTexts();
