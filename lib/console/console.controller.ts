import {
  Body,
  Get,
  Header,
  HttpCode,
  Inject,
  NotFoundException,
  Optional,
  Post,
  Query,
  Redirect,
  Req,
  Res,
  UseGuards,
} from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { AsyncApiDocument } from '../asyncapi/asyncapi-document';
import { consoleCookie, cookieValue } from './cookies';
import { doneOf, letterId, lettersOf, targetOf } from './console-action';
import { PageForm, pageRequest } from './console-exception.filter';
import { consoleUrl } from './console-links';
import { CONSOLE_OPTIONS, CSRF_COOKIE } from './console.constants';
import type { ResolvedConsoleOptions } from './console.options';
import { type ConsoleRequest, mountPath, ownField } from './console-request';
import { CONSOLE_CSS } from './console-styles';
import { csrfNonce, csrfToken, isCsrfNonce } from './csrf-token';
import { CsrfGuard } from './csrf.guard';
import { deadLettersPage } from './dead-letters-page';
import { deletePage } from './delete-page';
import { letterView } from './letter-view';
import { MessagingConsoleService } from './messaging-console.service';
import { overviewPage } from './overview-page';

const HTML = 'text/html; charset=utf-8';

/** What the pages' forms post to, below the console's mount (the API has the same under api/). */
const REPLAY_FORM = '/dead-letters/replay';
const DELETE_FORM = '/dead-letters/delete';

/**
 * The console's pages, JSON API and actions. Not a controller by itself: forRoot mounts a subclass
 * at the configured path behind the configured guard (see mountConsoleController). Reads are GET
 * and change nothing; every action is a POST behind CsrfGuard. Each route's path is written again
 * as the suffix mountPath strips, to find where the console is mounted as the browser sees it.
 */
export class ConsoleController {
  constructor(
    private readonly service: MessagingConsoleService,
    @Inject(CONSOLE_OPTIONS) private readonly options: ResolvedConsoleOptions,
    @Optional() private readonly asyncApi?: AsyncApiDocument,
  ) {}

  @Get()
  @Header('Content-Type', HTML)
  async overview(@Req() request: ConsoleRequest): Promise<string> {
    const base = pageRequest(request, mountPath(request, ''));
    return overviewPage(base, await this.service.overview());
  }

  /** The overview as JSON, with the CSRF token an API client sends back with its actions. */
  @Get('api/overview')
  async overviewJson(@Req() request: ConsoleRequest, @Res({ passthrough: true }) response: ServerResponse): Promise<object> {
    return {
      connections: await this.service.overview(),
      csrfToken: this.csrfToken(request, response, mountPath(request, '/api/overview')),
    };
  }

  @Get('dead-letters')
  @Header('Content-Type', HTML)
  async deadLetters(
    @Req() request: ConsoleRequest,
    @Res({ passthrough: true }) response: ServerResponse,
    @Query() query: unknown,
  ): Promise<string> {
    const base = pageRequest(request, mountPath(request, '/dead-letters'));
    const { connection, queue, window } = targetOf(query);
    const page = await this.service.deadLetters(connection, queue, window);
    const letters = page.letters.map(letterView);
    const token = this.csrfToken(request, response, base);
    return deadLettersPage({ base, connection, queue, page, letters, window, csrfToken: token, done: doneOf(query) });
  }

  @Get('api/dead-letters')
  async deadLettersJson(@Query() query: unknown): Promise<object> {
    const { connection, queue, window } = targetOf(query);
    const { letters, ...page } = await this.service.deadLetters(connection, queue, window);
    return { ...page, page: window.page, pageSize: window.limit, letters: letters.map(letterView) };
  }

  /** The confirmation step of a delete: the letter, and the form that deletes it. */
  @Get('dead-letters/delete')
  @Header('Content-Type', HTML)
  async confirmDelete(
    @Req() request: ConsoleRequest,
    @Res({ passthrough: true }) response: ServerResponse,
    @Query() query: unknown,
  ): Promise<string> {
    const base = pageRequest(request, mountPath(request, '/dead-letters/delete'));
    const { connection, queue, window } = targetOf(query);
    const id = letterId(ownField(query, 'id'));
    const page = await this.service.deadLetters(connection, queue, window);
    const found = page.letters.find((letter) => letter.id === id);
    const token = this.csrfToken(request, response, base);
    return deletePage({
      base,
      connection,
      queue,
      deadLetterQueue: page.deadLetterQueue,
      id,
      letter: found && letterView(found),
      window,
      csrfToken: token,
    });
  }

  @Post(REPLAY_FORM)
  @PageForm(REPLAY_FORM)
  @UseGuards(CsrfGuard)
  @Redirect()
  async replay(@Req() request: ConsoleRequest, @Body() body: unknown): Promise<{ url: string; statusCode: number }> {
    const base = pageRequest(request, mountPath(request, REPLAY_FORM));
    const { connection, queue, window } = targetOf(body);
    const count = await this.service.replay(connection, queue, lettersOf(body));
    return backTo(base, connection, queue, window.page, 'replayed', count);
  }

  @Post(DELETE_FORM)
  @PageForm(DELETE_FORM)
  @UseGuards(CsrfGuard)
  @Redirect()
  async discard(@Req() request: ConsoleRequest, @Body() body: unknown): Promise<{ url: string; statusCode: number }> {
    const base = pageRequest(request, mountPath(request, DELETE_FORM));
    const { connection, queue, window } = targetOf(body);
    const count = await this.service.discard(connection, queue, letterId(ownField(body, 'id')));
    return backTo(base, connection, queue, window.page, 'deleted', count);
  }

  @Post('api/dead-letters/replay')
  @UseGuards(CsrfGuard)
  @HttpCode(200)
  async replayJson(@Body() body: unknown): Promise<object> {
    const { connection, queue } = targetOf(body);
    return { replayed: await this.service.replay(connection, queue, lettersOf(body)) };
  }

  @Post('api/dead-letters/delete')
  @UseGuards(CsrfGuard)
  @HttpCode(200)
  async discardJson(@Body() body: unknown): Promise<object> {
    const { connection, queue } = targetOf(body);
    return { deleted: await this.service.discard(connection, queue, letterId(ownField(body, 'id'))) };
  }

  @Get('assets/console.css')
  @Header('Content-Type', 'text/css; charset=utf-8')
  styles(): string {
    return CONSOLE_CSS;
  }

  /** The app's AsyncAPI document (see AsyncApiDocument), behind the console's guard like everything here. */
  @Get('asyncapi.json')
  asyncApiDocument(): Record<string, unknown> {
    if (!this.asyncApi) throw new NotFoundException('This version of MessagingModule provides no AsyncAPI document');
    return this.asyncApi.document();
  }

  /** The CSRF token of this browser's cookie nonce; a browser without one gets a fresh cookie. */
  private csrfToken(request: ConsoleRequest, response: ServerResponse, base: string): string {
    let nonce = cookieValue(request.headers.cookie, CSRF_COOKIE);
    if (!isCsrfNonce(nonce)) {
      nonce = csrfNonce();
      response.setHeader('Set-Cookie', consoleCookie(CSRF_COOKIE, nonce, base || '/', request.secure === true));
    }
    return csrfToken(this.options.secret, nonce);
  }
}

/** Back to the page the action was taken on (303: the browser follows with a GET), saying what was done. */
function backTo(base: string, connection: string, queue: string, page: number, done: 'replayed' | 'deleted', count: number) {
  return { url: consoleUrl(base, '/dead-letters', { connection, queue, page, done, count }), statusCode: 303 };
}
