import { auth } from "@phoenix/proto";
import type { CallContext, ResponseStream } from "@phoenix/runtime/grpc";
import type { AuthContext } from "../context.js";
import { authenticateHandle } from "./authenticate.js";
import { serveQueueListen } from "./listen.js";

/** ListenHandleConnectionOffers: live listening on a handle's connection queue. */
export async function listenHandleConnectionOffers(
  ctx: AuthContext,
  requests: AsyncIterable<auth.ListenHandleConnectionOffersRequest>,
  call: CallContext,
  stream: ResponseStream<auth.ListenHandleConnectionOffersResponse>,
): Promise<void> {
  await serveQueueListen(
    ctx,
    requests,
    call.signal,
    (event) => stream.send({ event }),
    async (tx, init, now) => {
      const { tbs, handle } = await authenticateHandle(
        ctx,
        tx,
        init,
        auth.ListenHandleConnectionOffersTbs,
        auth.AuthServiceService.listenHandleConnectionOffers,
        now,
      );
      return { owner: { handleHash: handle.handleHash }, sequenceNumberStart: tbs.sequenceNumberStart };
    },
  );
}
